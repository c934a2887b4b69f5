/* placeholder replaced by the Redis mirror below */
#include "mirror.h"
#include "config.h"
int mirror_url_parse(const char *url, mirror_url_t *out, char *err, size_t errlen) { (void)url; (void)out; (void)err; (void)errlen; return 0; }
int mirror_start(char *err, size_t errlen) { (void)err; (void)errlen; return 0; }
void mirror_stop(int d) { (void)d; }
int mirror_enabled(void) { return 0; }
void mirror_exec_meta(const struct exec *e) { (void)e; }
void mirror_exec_event(const struct exec *e, const event_t *ev) { (void)e; (void)ev; }
void mirror_exec_touch(const struct exec *e) { (void)e; }
void mirror_health(cJSON *h) { cJSON_AddStringToObject(h, "redis", "disabled"); }
int mirror_read_exec(const char *id, const char *s, int w, mirror_read_cb cb, void *arg) { (void)id; (void)s; (void)w; (void)cb; (void)arg; return -1; }
int mirror_read_session(const char *s, mirror_read_cb cb, void *arg) { (void)s; (void)cb; (void)arg; return -1; }
