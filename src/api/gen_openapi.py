# gen_openapi.py: turns web/openapi.json into src/api/openapi.c (the text GET /v1/openapi.json serves).
# Usage: python3 src/api/gen_openapi.py web/openapi.json src/api/openapi.c
import json, sys
src = json.load(open(sys.argv[1]))
text = json.dumps(src, separators=(",", ":"))
out = ['/* openapi.c: GET /v1/openapi.json, the OpenAPI 3.1 description of the API.',
' *',
' * GENERATED from web/openapi.json (the file to edit) by src/api/gen_openapi.py:',
' *   python3 src/api/gen_openapi.py web/openapi.json src/api/openapi.c',
' * tests/unit/test_api_openapi.c fails when the two disagree. */',
'#include "api/internal.h"',
'',
'/* The string is kept as the generator writes it. */',
'/* clang-format off */',
'static const char openapi_text[] =']
for i in range(0, len(text), 90):
    chunk = text[i:i+90].replace('\\', '\\\\').replace('"', '\\"')
    out.append('    "' + chunk + '"')
out[-1] += ';'
out += ['/* clang-format on */',
'',
'const char *api_openapi_text(size_t *len)',
'{',
'    *len = sizeof openapi_text - 1;',
'    return openapi_text;',
'}',
'',
'void api_get_openapi(http_request *req, void *ud)',
'{',
'    size_t len;',
'    const char *t = api_openapi_text(&len);',
'    (void)ud;',
'    http_respond(req, 200, "application/json", NULL, 0, (sb_slice){t, len});',
'}',
'']
open(sys.argv[2], 'w').write('\n'.join(out))
