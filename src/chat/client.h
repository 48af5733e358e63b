/* chat_client: `weft chat URL`, a terminal client for weft's chat service.
 *
 * It connects to ws://HOST[:PORT][/PATH][?QUERY] (PATH defaults to /ws, PORT to 80), does the
 * WebSocket handshake and framing itself, sends each line typed on stdin as a chat message
 * (`/join ROOM` switches rooms, `/quit` or end of input closes) and prints what it receives,
 * one line each, flushed. */
#ifndef WEFT_CHAT_CLIENT_H
#define WEFT_CHAT_CLIENT_H

/* Runs the client; argv[0] is the first argument after "chat". Returns the process exit
 * status: 0 after a normal close (ours, or the server's 1000/1001), 1 for a connection or
 * protocol failure or another close code from the server, 2 for a bad URL or usage. */
int chat_client_main(int argc, char **argv);

#endif
