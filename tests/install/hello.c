/* Built against an installed scuttlebutt: a node sets a key and reads it. */
#include <stdio.h>
#include <string.h>

#include <scuttlebutt.h>

int main(void)
{
    sb_config cfg;
    sb_config_init(&cfg);
    cfg.bind = "127.0.0.1:0";
    sb_node *node;
    int rc = sb_node_new(&cfg, &node);
    if (rc != SB_OK) {
        fprintf(stderr, "sb_node_new: %s\n", sb_strerror(rc));
        return 1;
    }
    char *value = NULL;
    size_t len;
    rc = sb_node_set(node, "hello", 5, "world", 5);
    if (rc == SB_OK)
        rc = sb_node_get(node, sb_node_addr(node), "hello", 5, &value, &len);
    int ok = rc == SB_OK && len == 5 && strcmp(value, "world") == 0;
    printf("scuttlebutt %s at %s: hello=%s\n", SB_VERSION_STRING,
           sb_node_addr(node), ok ? value : "?");
    sb_free(value);
    sb_node_free(node);
    return ok ? 0 : 1;
}
