/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stddef.h>
#include <yaml.h>

#include "instance/octoconfig.h"
#include "util.h"

/* config.yaml is the instance user's file and is read by the root daemon, so it is parsed with
 * libyaml's event API and nothing more: no document tree is built, aliases are never expanded (so
 * "billion laughs" documents cost nothing), and nesting is bounded. Only the few keys below are
 * looked at; everything else is skipped event by event. */

/* OctoPrint's own config.yaml is about 6 levels deep; plugins add a few more. */
#define DEPTH_MAX 64U

typedef enum KeyType {
        KEY_MAPPING,
        KEY_FOLDERS,       /* the "folder" mapping: its keys are folder identifiers */
        KEY_STRING,
        KEY_BOOL,
} KeyType;

typedef struct KeySpec {
        const char *key;
        KeyType type;
        size_t offset;                    /* KEY_STRING, KEY_BOOL: the field in OctoConfig */
        const struct KeySpec *children;   /* KEY_MAPPING: terminated by a NULL key */
} KeySpec;

#define FIELD(k, t, f) { .key = (k), .type = (t), .offset = offsetof(OctoConfig, f) }
#define MAPPING(k, c) { .key = (k), .type = KEY_MAPPING, .children = (c) }

static const KeySpec appearance_keys[] = {
        FIELD("name", KEY_STRING, appearance_name),
        {},
};

static const KeySpec backup_keys[] = {
        FIELD("path", KEY_STRING, backup_path),
        FIELD("restore_unsupported", KEY_BOOL, restore_unsupported),
        {},
};

static const KeySpec pluginmanager_keys[] = {
        FIELD("repository", KEY_STRING, plugin_repository),
        {},
};

static const KeySpec plugins_keys[] = {
        MAPPING("backup", backup_keys),
        MAPPING("pluginmanager", pluginmanager_keys),
        {},
};

static const KeySpec commands_keys[] = {
        FIELD("serverRestartCommand", KEY_STRING, restart_command),
        {},
};

static const KeySpec server_keys[] = {
        MAPPING("commands", commands_keys),
        {},
};

static const KeySpec root_keys[] = {
        MAPPING("appearance", appearance_keys),
        MAPPING("plugins", plugins_keys),
        MAPPING("server", server_keys),
        { .key = "folder", .type = KEY_FOLDERS },
        {},
};

typedef struct Parser {
        yaml_parser_t yaml;
        yaml_event_t event;
        bool have_event;
        const char *data;
        size_t size;
        OctoConfig *config;
        char *error;
} Parser;

static int parser_fail(Parser *p, size_t line, const char *format, ...) _printf_(3, 4);

/* Records the first error as "config.yaml line N: ..." and returns -EBADMSG. */
static int parser_fail(Parser *p, size_t line, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int r;

        if (p->error)
                return -EBADMSG;
        va_start(ap, format);
        r = vasprintf(&msg, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        if (asprintf(&p->error, "config.yaml line %zu: %s", line, msg) < 0) {
                p->error = NULL;
                return -ENOMEM;
        }
        return -EBADMSG;
}

static size_t line_of_offset(const Parser *p, size_t offset) {
        size_t line = 1;

        for (size_t i = 0; i < offset && i < p->size; i++)
                if (p->data[i] == '\n')
                        line++;
        return line;
}

static int parser_fail_yaml(Parser *p) {
        const yaml_parser_t *y = &p->yaml;

        if (y->error == YAML_MEMORY_ERROR)
                return -ENOMEM;
        /* Reader errors (bad encoding, control characters) carry a byte offset, not a mark. */
        if (y->error == YAML_READER_ERROR)
                return parser_fail(p, line_of_offset(p, y->problem_offset), "%s",
                                   strempty(y->problem));
        if (y->context)
                return parser_fail(p, y->problem_mark.line + 1, "%s (%s that started on line %zu)",
                                   strempty(y->problem), y->context, y->context_mark.line + 1);
        return parser_fail(p, y->problem_mark.line + 1, "%s", strempty(y->problem));
}

static int parser_next(Parser *p) {
        if (p->have_event) {
                yaml_event_delete(&p->event);
                p->have_event = false;
        }
        if (!yaml_parser_parse(&p->yaml, &p->event))
                return parser_fail_yaml(p);
        p->have_event = true;
        return 0;
}

static size_t event_line(const Parser *p) {
        return p->event.start_mark.line + 1;
}

static bool event_is_null(const yaml_event_t *e) {
        const char *v = (const char *) e->data.scalar.value, *tag = (const char *) e->data.scalar.tag;

        if (e->type != YAML_SCALAR_EVENT)
                return false;
        if (tag && streq(tag, YAML_NULL_TAG))
                return true;
        if (tag || e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        /* PyYAML's resolver: ~, null, Null, NULL and the empty plain scalar. */
        return streq(v, "") || streq(v, "~") || streq(v, "null") || streq(v, "Null") || streq(v, "NULL");
}

static const char *event_kind(const yaml_event_t *e) {
        switch (e->type) {
        case YAML_SCALAR_EVENT:
                return "a scalar";
        case YAML_SEQUENCE_START_EVENT:
                return "a list";
        case YAML_MAPPING_START_EVENT:
                return "a mapping";
        case YAML_ALIAS_EVENT:
                return "an alias";
        default:
                return "something else";
        }
}

/* Skips the node whose first event is the current one (a scalar, an alias or a whole collection). */
static int skip_node(Parser *p, unsigned depth) {
        unsigned level = 0;

        do {
                switch (p->event.type) {
                case YAML_SEQUENCE_START_EVENT:
                case YAML_MAPPING_START_EVENT:
                        if (depth + ++level > DEPTH_MAX)
                                return parser_fail(p, event_line(p), "nested deeper than %u levels", DEPTH_MAX);
                        break;
                case YAML_SEQUENCE_END_EVENT:
                case YAML_MAPPING_END_EVENT:
                        level--;
                        break;
                default:
                        break;
                }
                if (level > 0) {
                        int r = parser_next(p);
                        if (r < 0)
                                return r;
                }
        } while (level > 0);
        return 0;
}

static char **string_field(OctoConfig *c, size_t offset) {
        return (char **) ((char *) c + offset);
}

/* A key given twice replaces the first value as a whole, as in PyYAML: so entering a mapping first
 * forgets what an earlier occurrence of it set. */
static void reset_spec(OctoConfig *c, const KeySpec *s) {
        switch (s->type) {
        case KEY_STRING:
                free(*string_field(c, s->offset));
                *string_field(c, s->offset) = NULL;
                break;
        case KEY_BOOL:
                *(bool *) ((char *) c + s->offset) = false;
                break;
        case KEY_MAPPING:
                for (const KeySpec *i = s->children; i->key; i++)
                        reset_spec(c, i);
                break;
        case KEY_FOLDERS:
                for (size_t i = 0; i < _FOLDER_MAX; i++) {
                        free(c->folders[i]);
                        c->folders[i] = NULL;
                }
                break;
        }
}

static int parse_string(Parser *p, const char *path, char **field) {
        const yaml_event_t *e = &p->event;

        if (e->type != YAML_SCALAR_EVENT)
                return parser_fail(p, event_line(p), "%s: expected a string, found %s", path, event_kind(e));
        if (event_is_null(e) || e->data.scalar.length == 0) {
                free(*field);
                *field = NULL;
                return 0;
        }
        if (strlen((const char *) e->data.scalar.value) != e->data.scalar.length)
                return parser_fail(p, event_line(p), "%s: contains a NUL character", path);
        return free_and_strdup(field, (const char *) e->data.scalar.value);
}

static int parse_bool(Parser *p, const char *path, bool *field) {
        const yaml_event_t *e = &p->event;
        int b;

        if (e->type != YAML_SCALAR_EVENT)
                return parser_fail(p, event_line(p), "%s: expected true or false, found %s", path, event_kind(e));
        if (event_is_null(e)) {
                *field = false;
                return 0;
        }
        b = parse_boolean((const char *) e->data.scalar.value);
        if (b < 0)
                return parser_fail(p, event_line(p), "%s: expected true or false, found \"%.40s\"",
                                   path, (const char *) e->data.scalar.value);
        *field = b;
        return 0;
}

static int parse_mapping(Parser *p, const KeySpec *spec, const char *path, unsigned depth);

/* The current event is the value of a key we know. */
static int parse_value(Parser *p, const KeySpec *spec, char **folder, const char *path, unsigned depth) {
        const yaml_event_t *e = &p->event;

        /* Expanding aliases is what makes YAML bombs explode; no real config.yaml needs them here. */
        if (e->type == YAML_ALIAS_EVENT)
                return parser_fail(p, event_line(p), "%s: aliases are not supported", path);
        if (folder)
                return parse_string(p, path, folder);

        switch (spec->type) {
        case KEY_STRING:
                return parse_string(p, path, string_field(p->config, spec->offset));
        case KEY_BOOL:
                return parse_bool(p, path, (bool *) ((char *) p->config + spec->offset));
        case KEY_MAPPING:
        case KEY_FOLDERS:
                if (event_is_null(e)) {
                        reset_spec(p->config, spec);
                        return 0;
                }
                if (e->type != YAML_MAPPING_START_EVENT)
                        return parser_fail(p, event_line(p), "%s: expected a mapping, found %s",
                                           path, event_kind(e));
                if (depth + 1 > DEPTH_MAX)
                        return parser_fail(p, event_line(p), "nested deeper than %u levels", DEPTH_MAX);
                reset_spec(p->config, spec);
                return parse_mapping(p, spec, path, depth + 1);
        }
        return -EINVAL;
}

static const KeySpec *find_key(const KeySpec *children, const char *key) {
        for (const KeySpec *i = children; i && i->key; i++)
                if (streq(i->key, key))
                        return i;
        return NULL;
}

/* One key/value pair of the mapping `spec`; the current event is the key. */
static int parse_pair(Parser *p, const KeySpec *spec, const char *path, unsigned depth) {
        _cleanup_free_ char *key = NULL, *full = NULL;
        const KeySpec *child = NULL;
        char **folder = NULL;
        int r;

        if (p->event.type == YAML_SCALAR_EVENT) {
                key = strdup((const char *) p->event.data.scalar.value);
                if (!key)
                        return -ENOMEM;
        } else {
                r = skip_node(p, depth);      /* complex keys never name anything we read */
                if (r < 0)
                        return r;
        }
        r = parser_next(p);
        if (r < 0)
                return r;

        if (key && spec->type == KEY_FOLDERS) {
                /* Via int: FolderId may be an unsigned type, and unknown ids are -1. */
                int id = (int) folder_id_from_string(key);
                if (id >= 0 && id < _FOLDER_MAX)
                        folder = &p->config->folders[id];
        } else if (key)
                child = find_key(spec->children, key);
        if (!child && !folder)
                return skip_node(p, depth);

        if (asprintf(&full, "%s%s%s", path, isempty(path) ? "" : ".", key) < 0) {
                full = NULL;
                return -ENOMEM;
        }
        return parse_value(p, child, folder, full, depth);
}

/* The current event starts the mapping `spec`. */
static int parse_mapping(Parser *p, const KeySpec *spec, const char *path, unsigned depth) {
        for (;;) {
                int r = parser_next(p);
                if (r < 0)
                        return r;
                if (p->event.type == YAML_MAPPING_END_EVENT)
                        return 0;
                r = parse_pair(p, spec, path, depth);
                if (r < 0)
                        return r;
        }
}

static int parse_document(Parser *p) {
        static const KeySpec root = { .key = "", .type = KEY_MAPPING, .children = root_keys };
        int r;

        r = parser_next(p);                   /* the root node */
        if (r < 0)
                return r;
        if (p->event.type == YAML_MAPPING_START_EVENT) {
                r = parse_mapping(p, &root, "", 1);
                if (r < 0)
                        return r;
        } else if (!event_is_null(&p->event))
                return parser_fail(p, event_line(p), "the top level is %s, not a mapping",
                                   event_kind(&p->event));

        r = parser_next(p);                   /* DOCUMENT-END */
        if (r < 0)
                return r;
        r = parser_next(p);
        if (r < 0)
                return r;
        if (p->event.type != YAML_STREAM_END_EVENT)
                return parser_fail(p, event_line(p), "expected a single document, found another one");
        return 0;
}

static int parse_stream(Parser *p) {
        int r;

        r = parser_next(p);                   /* STREAM-START */
        if (r < 0)
                return r;
        r = parser_next(p);
        if (r < 0)
                return r;
        if (p->event.type == YAML_STREAM_END_EVENT)
                return 0;                     /* empty file, or only comments */
        return parse_document(p);
}

int octoconfig_parse(const char *data, size_t size, OctoConfig *ret, char **ret_error) {
        OctoConfig c = {};
        Parser p = {
                .data = data,
                .size = size,
                .config = &c,
        };
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (size > OCTOCONFIG_SIZE_MAX) {
                if (ret_error && asprintf(ret_error, "config.yaml is larger than %u MiB",
                                          OCTOCONFIG_SIZE_MAX / 1024 / 1024) < 0)
                        *ret_error = NULL;
                return -EFBIG;
        }
        if (!yaml_parser_initialize(&p.yaml))
                return -ENOMEM;
        yaml_parser_set_input_string(&p.yaml, (const unsigned char *) (data ?: ""), data ? size : 0);
        r = parse_stream(&p);
        if (p.have_event)
                yaml_event_delete(&p.event);
        yaml_parser_delete(&p.yaml);

        if (r < 0) {
                octoconfig_done(&c);
                if (ret_error)
                        *ret_error = TAKE_PTR(p.error);
                free(p.error);
                return r;
        }
        free(p.error);
        *ret = c;
        return 0;
}

void octoconfig_done(OctoConfig *c) {
        if (!c)
                return;
        free(c->appearance_name);
        free(c->backup_path);
        free(c->plugin_repository);
        free(c->restart_command);
        for (size_t i = 0; i < _FOLDER_MAX; i++)
                free(c->folders[i]);
        *c = (OctoConfig) {};
}
