/* json.h: the one way a JSON text becomes a cJSON tree (sweep configs, eval task lines, eval
 * parts): cJSON accepts an object with a key twice (lookups then take the first, silently)
 * and reports text nested past its limit as merely broken; this says what is wrong. */
#ifndef JSON_H
#define JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "rb.h"

/* Parse text[0..len) as one JSON value followed by nothing but whitespace into *out (freed
 * with cJSON_Delete). Refused with RB_EINPUT naming `what`: broken JSON ("broken JSON at
 * line L, column C"), text after the value, nesting deeper than cJSON's limit ("nested
 * deeper than N levels"), and an object holding a key twice ("duplicate key 'k' in
 * <where>", where is the path of the object, as $.policies[2].params). */
rb_status rb_json_parse(const char *text, size_t len, const char *what, cJSON **out, rb_err *e);

/* Add number v to object o as "%.17g", which reads back as the same double (cJSON prints
 * 15 significant digits when they read back within an epsilon: a value stored and read
 * again could differ in its last bit). Returns the item, NULL on failure. */
cJSON *rb_json_add_double(cJSON *o, const char *name, double v);

#endif
