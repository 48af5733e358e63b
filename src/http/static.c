/* Static files under --static. Placeholder: answered 404 until the full implementation lands. */
#include "http/handlers.h"

void static_serve(struct http_exchange *x)
{
    http_respond_error(x, 404, "not found");
}
