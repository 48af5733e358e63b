/* The web chat page served at GET / on the chat port. */
#ifndef WEFT_CHAT_PAGE_H
#define WEFT_CHAT_PAGE_H

extern const char chat_page_html[];
extern const unsigned long chat_page_html_len;

#endif
