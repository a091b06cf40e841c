"""Checks HTTP answers against docs/openapi.json: a validator for the subset
of JSON Schema (2020-12) that the description uses, and the lookup of an
operation's documented response by status and media type. Standard library
only. A schema keyword outside the subset is an error, not ignored, so the
description cannot silently say more than is checked.

    spec = Spec.load(path)
    errors = spec.check_response("GET", "/v1/items/{id}", status, content_type, body)
"""
import json
import re

# Keywords the validator understands; annotations are accepted and ignored.
CHECKED = {"$ref", "type", "properties", "required", "additionalProperties", "items", "enum",
           "const", "minimum", "maximum", "minItems", "maxItems", "minLength", "maxLength",
           "pattern", "oneOf", "anyOf", "format"}
ANNOTATIONS = {"description", "default", "title", "examples", "x-itemvec-line-schema"}
TYPES = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}
DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


class SchemaError(Exception):
    pass


class Spec:
    def __init__(self, doc):
        self.doc = doc

    @classmethod
    def load(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

    def resolve(self, ref):
        if not ref.startswith("#/"):
            raise SchemaError("only local $ref are supported: %s" % ref)
        node = self.doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if part not in node:
                raise SchemaError("$ref %s does not resolve" % ref)
            node = node[part]
        return node

    def deref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            node = self.resolve(node["$ref"])
        return node

    # ---- JSON Schema subset ----

    def validate(self, value, schema, where="$"):
        """Returns a list of "where: what" strings; empty when value conforms."""
        errors = []
        self._validate(value, schema, where, errors)
        return errors

    def _validate(self, v, s, where, errors):
        if s is True or s == {}:
            return
        if s is False:
            errors.append("%s: no value is allowed here" % where)
            return
        unknown = set(s) - CHECKED - ANNOTATIONS
        if unknown:
            raise SchemaError("%s: unsupported schema keywords %s" % (where, sorted(unknown)))
        if "$ref" in s:
            self._validate(v, self.resolve(s["$ref"]), where, errors)
        if "type" in s:
            types = s["type"] if isinstance(s["type"], list) else [s["type"]]
            if not any(TYPES[t](v) for t in types):
                errors.append("%s: %s is not of type %s" % (where, _short(v), "|".join(types)))
                return
        if "const" in s and v != s["const"]:
            errors.append("%s: %s is not %s" % (where, _short(v), _short(s["const"])))
        if "enum" in s and v not in s["enum"]:
            errors.append("%s: %s is not one of %s" % (where, _short(v), s["enum"]))
        if TYPES["number"](v):
            if "minimum" in s and v < s["minimum"]:
                errors.append("%s: %s < minimum %s" % (where, v, s["minimum"]))
            if "maximum" in s and v > s["maximum"]:
                errors.append("%s: %s > maximum %s" % (where, v, s["maximum"]))
        if isinstance(v, str):
            if "minLength" in s and len(v) < s["minLength"]:
                errors.append("%s: shorter than %d" % (where, s["minLength"]))
            if "maxLength" in s and len(v) > s["maxLength"]:
                errors.append("%s: longer than %d" % (where, s["maxLength"]))
            if "pattern" in s and not re.search(s["pattern"], v):
                errors.append("%s: %s does not match %s" % (where, _short(v), s["pattern"]))
            if s.get("format") == "date-time" and not DATE_TIME.match(v):
                errors.append("%s: %s is not an RFC 3339 date-time" % (where, _short(v)))
        if isinstance(v, list):
            if "minItems" in s and len(v) < s["minItems"]:
                errors.append("%s: fewer than %d items" % (where, s["minItems"]))
            if "maxItems" in s and len(v) > s["maxItems"]:
                errors.append("%s: more than %d items" % (where, s["maxItems"]))
            if "items" in s:
                for i, x in enumerate(v):
                    self._validate(x, s["items"], "%s[%d]" % (where, i), errors)
        if isinstance(v, dict):
            props = s.get("properties", {})
            for k in s.get("required", []):
                if k not in v:
                    errors.append("%s: required property %r is missing" % (where, k))
            extra = s.get("additionalProperties", True)
            for k, x in v.items():
                if k in props:
                    self._validate(x, props[k], "%s.%s" % (where, k), errors)
                elif extra is False:
                    errors.append("%s: property %r is not documented" % (where, k))
                elif isinstance(extra, dict):
                    self._validate(x, extra, "%s.%s" % (where, k), errors)
        for key in ("oneOf", "anyOf"):
            if key in s:
                results = [self.validate(v, sub, where) for sub in s[key]]
                ok = sum(1 for r in results if not r)
                if (key == "oneOf" and ok != 1) or (key == "anyOf" and ok == 0):
                    detail = "; ".join(r[0] for r in results if r)
                    errors.append("%s: matches %d of the %s schemas (%s)" % (where, ok, key, detail))

    def check_schemas(self):
        """Walks every schema in the document; raises SchemaError on an
        unsupported keyword or a dangling $ref."""
        def walk(node, where):
            if isinstance(node, dict):
                if "$ref" in node:
                    self.resolve(node["$ref"])
                for k, x in node.items():
                    if k in ("schema", "x-itemvec-line-schema"):
                        self._keywords(x, where + "/" + k)
                    walk(x, where + "/" + k)
            elif isinstance(node, list):
                for i, x in enumerate(node):
                    walk(x, "%s/%d" % (where, i))
        walk(self.doc, "#")
        for name, schema in self.doc.get("components", {}).get("schemas", {}).items():
            self._keywords(schema, "#/components/schemas/" + name)

    def _keywords(self, s, where):
        if not isinstance(s, dict):
            return
        unknown = set(s) - CHECKED - ANNOTATIONS
        if unknown:
            raise SchemaError("%s: unsupported schema keywords %s" % (where, sorted(unknown)))
        for k in ("properties",):
            for name, sub in s.get(k, {}).items():
                self._keywords(sub, where + "/properties/" + name)
        for k in ("items", "additionalProperties"):
            if isinstance(s.get(k), dict):
                self._keywords(s[k], where + "/" + k)
        for k in ("oneOf", "anyOf"):
            for i, sub in enumerate(s.get(k, [])):
                self._keywords(sub, "%s/%s/%d" % (where, k, i))

    # ---- operations ----

    def operations(self):
        """[(METHOD, path template, operation object)]"""
        out = []
        for path, item in self.doc["paths"].items():
            for m in ("get", "put", "post", "delete", "patch", "head", "options"):
                if m in item:
                    out.append((m.upper(), path, item[m]))
        return out

    def operation(self, method, template):
        item = self.doc["paths"].get(template)
        if not item or method.lower() not in item:
            raise KeyError("%s %s is not documented" % (method, template))
        return item[method.lower()]

    def check_response(self, method, template, status, content_type, body):
        """Errors (a list of strings) of an answer against the documented
        operation: its status must be listed explicitly (not only
        'default'), its media type listed for that status, and a JSON body
        must validate against the schema (NDJSON: each line against the
        x-itemvec-line-schema)."""
        op = self.operation(method, template)
        resp = op["responses"].get(str(status))
        if resp is None:
            return ["%s %s: status %d is not documented (has %s)" % (
                method, template, status, sorted(op["responses"]))]
        resp = self.deref(resp)
        content = resp.get("content")
        if not content:
            if body:
                return ["%s %s %d: documented without a body, got %d bytes" % (
                    method, template, status, len(body))]
            return []
        media = (content_type or "").split(";")[0].strip().lower()
        if media not in content:
            return ["%s %s %d: Content-Type %r is not documented (has %s)" % (
                method, template, status, content_type, sorted(content))]
        m = content[media]
        schema = m.get("schema", {})
        where = "%s %s %d" % (method, template, status)
        if media == "application/x-ndjson" and "x-itemvec-line-schema" in m:
            errors = []
            for i, line in enumerate(body.decode("utf-8").splitlines()):
                if line:
                    errors += self.validate(json.loads(line), m["x-itemvec-line-schema"],
                                            "%s line %d" % (where, i + 1))
                if len(errors) > 5:
                    break
            return errors
        if media.endswith("json"):
            try:
                value = json.loads(body)
            except ValueError as e:
                return ["%s: body is not JSON: %s" % (where, e)]
            return self.validate(value, schema, where)
        if schema.get("format") == "binary":  # bytes: nothing to validate
            return []
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return ["%s: body is not UTF-8 text" % where]
        return self.validate(text, schema, where)


def _short(v):
    s = json.dumps(v)
    return s if len(s) < 60 else s[:57] + "..."
