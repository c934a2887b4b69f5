/*
 * replica: the replica watcher thread. It heartbeats replica:{id} while the
 * loop is alive (mirror_stats_t.loop_tick_ms), and sweeps replicas whose
 * heartbeat expired: their running executions are marked failed ("replica
 * lost") by one Lua script per replica. Its own Redis connection
 * (MIRROR_CONN_WATCHER); started and stopped by cluster_start/cluster_stop.
 */
#ifndef MCP_SANDBOXD_REPLICA_H
#define MCP_SANDBOXD_REPLICA_H

/** The watcher thread's body: heartbeat and lost-replica sweep. */
void *replica_watcher_main(void *arg);
/** Loop thread: asks the watcher to stop (it deletes the heartbeat: a clean exit is not a loss). */
void replica_watcher_signal_stop(void);

#endif
