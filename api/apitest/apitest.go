// Package apitest checks JSON bodies against the OpenAPI document of
// package api with a JSON Schema 2020-12 validator: the tests of the
// server validate what it really answered, and the examples captured from
// it. Only tests import it.
package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/thiqa/thiqa/api"
)

// docURL names the document for the schema compiler.
const docURL = "file:///openapi.json"

// Document is the OpenAPI document, ready to validate bodies.
type Document struct {
	doc map[string]any
	c   *jsonschema.Compiler
}

// Load reads the document package api serves.
func Load() (*Document, error) {
	raw, err := api.Document("")
	if err != nil {
		return nil, err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	doc, ok := inst.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the OpenAPI document is not a JSON object")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(docURL, inst); err != nil {
		return nil, err
	}
	return &Document{doc: doc, c: c}, nil
}

// Raw returns the decoded document.
func (d *Document) Raw() map[string]any { return d.doc }

// pointer escapes a JSON pointer token.
func pointer(tokens ...string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}

// Resolve returns the value at a local reference ("#/components/…").
func (d *Document) Resolve(ref string) (any, error) {
	p, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, fmt.Errorf("%s: only local references are used", ref)
	}
	var cur any = d.doc
	for _, t := range strings.Split(p, "/")[1:] {
		t = strings.NewReplacer("~1", "/", "~0", "~").Replace(t)
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[t]
			if !ok {
				return nil, fmt.Errorf("%s: no %q", ref, t)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(v) {
				return nil, fmt.Errorf("%s: no index %q", ref, t)
			}
			cur = v[i]
		default:
			return nil, fmt.Errorf("%s: cannot descend into %q", ref, t)
		}
	}
	return cur, nil
}

// MediaType returns the JSON pointer of the media type object of an
// operation's request body (status 0) or of its response with status,
// following a $ref to components.responses.
func (d *Document) MediaType(method, path string, status int, mediaType string) (string, error) {
	op := pointer("paths", path, strings.ToLower(method))
	if _, err := d.Resolve("#" + op); err != nil {
		return "", err
	}
	var at string
	if status == 0 {
		at = op + pointer("requestBody")
	} else {
		at = op + pointer("responses", strconv.Itoa(status))
		v, err := d.Resolve("#" + at)
		if err != nil {
			return "", err
		}
		if m, ok := v.(map[string]any); ok {
			if ref, ok := m["$ref"].(string); ok {
				at = strings.TrimPrefix(ref, "#")
			}
		}
	}
	at += pointer("content", mediaType)
	if _, err := d.Resolve("#" + at); err != nil {
		return "", err
	}
	return at, nil
}

// Validate checks body (JSON) against the schema of the media type object
// at ptr (from MediaType).
func (d *Document) Validate(ptr string, body []byte) error {
	sch, err := d.c.Compile(docURL + "#" + ptr + pointer("schema"))
	if err != nil {
		return fmt.Errorf("compiling the schema at %s: %w", ptr, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return sch.Validate(inst)
}

// Check validates a request (status 0) or response body of an operation.
func (d *Document) Check(method, path string, status int, mediaType string, body []byte) error {
	ptr, err := d.MediaType(method, path, status, mediaType)
	if err != nil {
		return err
	}
	return d.Validate(ptr, body)
}

// ExampleUse is one place where a media type refers to an example.
type ExampleUse struct {
	// MediaType is the JSON pointer of the media type object.
	MediaType string
	// Name is the example's name in components.examples.
	Name string
}

// ExampleUses lists every media type's references to components.examples.
func (d *Document) ExampleUses() []ExampleUse {
	var out []ExampleUse
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch x := v.(type) {
		case map[string]any:
			if ex, ok := x["examples"].(map[string]any); ok && x["schema"] != nil {
				for _, e := range ex {
					if m, ok := e.(map[string]any); ok {
						if ref, ok := m["$ref"].(string); ok {
							out = append(out, ExampleUse{MediaType: at, Name: strings.TrimPrefix(ref, "#/components/examples/")})
						}
					}
				}
			}
			for k, c := range x {
				walk(c, at+pointer(k))
			}
		case []any:
			for i, c := range x {
				walk(c, at+pointer(strconv.Itoa(i)))
			}
		}
	}
	walk(d.doc["paths"], pointer("paths"))
	walk(d.doc["components"], pointer("components"))
	return out
}

// ExampleValue returns the value of a captured example, as JSON.
func (d *Document) ExampleValue(name string) ([]byte, error) {
	v, err := d.Resolve("#" + pointer("components", "examples", name, "value"))
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
