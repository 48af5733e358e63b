#include "chat/page.h"

const char chat_page_html[] =
    "<!doctype html><title>weft chat</title><p>loading</p><script></script>\n";
const unsigned long chat_page_html_len = sizeof chat_page_html - 1;
