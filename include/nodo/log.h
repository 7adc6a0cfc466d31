/*
 * log.h - the one logging API of the node.
 *
 * When stderr is connected to the journal ($JOURNAL_STREAM names stderr's
 * device and inode) lines go through sd_journal_send() with PRIORITY=,
 * SYSLOG_IDENTIFIER= and, where given, TENANT=. Otherwise they go to stderr
 * prefixed with "<N>" (sd-daemon(3) priority prefixes), which journald also
 * understands. All functions are thread-safe. Never pass a secret.
 */
#ifndef NODO_LOG_H
#define NODO_LOG_H

#include <syslog.h>

/* Sets the identifier and decides journal or stderr. Call once, early. */
void log_init(const char *ident);

/* LOG_DEBUG, LOG_INFO, LOG_WARNING or LOG_ERR; lines above it are dropped. */
void log_set_level(int prio);
int log_get_level(void);

/* Parses "debug", "info", "warning" (or "warn"), "error"; -1 when unknown. */
int log_level_parse(const char *s);

/* tenant may be NULL; when set it becomes the TENANT= journal field. */
void log_msg(int prio, const char *tenant, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...)  log_msg(LOG_DEBUG, NULL, __VA_ARGS__)
#define log_info(...)   log_msg(LOG_INFO, NULL, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, NULL, __VA_ARGS__)
#define log_warn(...)   log_msg(LOG_WARNING, NULL, __VA_ARGS__)
#define log_err(...)    log_msg(LOG_ERR, NULL, __VA_ARGS__)

#endif
