// An edge function in C: a plain WASI preview1 command, served WAGI-style.
// The request arrives as CGI environment variables (and the body on stdin);
// the response is CGI headers, a blank line, then the body, on stdout.
#include <stdio.h>
#include <stdlib.h>

static const char *env_or(const char *name, const char *fallback) {
  const char *value = getenv(name);
  return value ? value : fallback;
}

int main(void) {
  const char *name = getenv("ORCA_PARAM_NAME");
  printf("Content-Type: text/plain\r\n");
  printf("X-Served-By: hello-c\r\n\r\n");
  if (name) {
    printf("hello, %s, from C!\n", name);
    return 0;
  }
  printf("hello from a C edge function\n");
  printf("method=%s path=%s query=%s\n", env_or("REQUEST_METHOD", "?"), env_or("PATH_INFO", "?"),
         env_or("QUERY_STRING", ""));
  printf("greeting=%s\n", env_or("GREETING", "(none)"));
  return 0;
}
