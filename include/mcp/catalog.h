/*
 * catalog: the tool catalogue (mcp/catalog.c): names, titles, descriptions,
 * input and output schemas and annotations of the seven tools, built once at
 * startup into the cached tools/list result. The handlers are tools'. Loop
 * thread only.
 */
#ifndef MCP_SANDBOXD_CATALOG_H
#define MCP_SANDBOXD_CATALOG_H

#include <cjson/cJSON.h>
#include <stddef.h>

/** Builds the cached tools/list result. 0 / -1. */
int catalog_init(void);
/** Frees the cache. */
void catalog_free(void);
/** The input schema of tool `name` (owned by the catalogue; NULL when unknown). */
const cJSON *catalog_input_schema(const char *name);
/** The tools/list result (JSON text, owned by the catalogue). */
const char *catalog_list_json(size_t *len);

#endif
