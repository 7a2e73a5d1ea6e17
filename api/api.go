// Package api is the reference of Thiqa's HTTP API: the OpenAPI 3.1
// document of every endpoint `thiqa serve` answers. openapi.yaml is written
// by hand; examples.json holds request and response bodies captured from a
// real server by cmd/thiqa's walk-through test. Document merges the two
// into the JSON that `thiqa serve` answers at GET /openapi.json.
package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"
)

//go:embed openapi.yaml
var source []byte

//go:embed examples.json
var examples []byte

// Path is where `thiqa serve` answers the document.
const Path = "/openapi.json"

// Document returns the OpenAPI document as indented JSON, in the order
// openapi.yaml gives, with the captured examples as components.examples.
// A non-empty serverURL becomes the document's only server (the
// deployment's publicBaseURL).
func Document(serverURL string) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(source, &root); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 {
		return nil, errors.New("openapi.yaml: want one YAML document")
	}
	if !json.Valid(examples) {
		return nil, errors.New("examples.json is not valid JSON")
	}
	extra := map[string]map[string]json.RawMessage{"components": {"examples": examples}}
	if serverURL != "" {
		servers, err := json.Marshal([]map[string]string{{"url": serverURL}})
		if err != nil {
			return nil, err
		}
		extra[""] = map[string]json.RawMessage{"servers": servers}
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, root.Content[0], "", extra); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// Handler serves Document(serverURL) at GET /openapi.json. The document is
// built once; an error here is a defect of the embedded files, which the
// package's tests catch.
func Handler(serverURL string) (http.Handler, error) {
	doc, err := Document(serverURL)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(doc)
	}), nil
}

// writeJSON writes n as JSON, keeping the order of mapping keys. extra
// replaces (or adds) members of the mapping at a path ("" is the root,
// "components" its member): what the generated examples and the served
// server URL contribute.
func writeJSON(buf *bytes.Buffer, n *yaml.Node, path string, extra map[string]map[string]json.RawMessage) error {
	switch n.Kind {
	case yaml.AliasNode:
		return writeJSON(buf, n.Alias, path, extra)
	case yaml.MappingNode:
		buf.WriteByte('{')
		add := extra[path]
		seen := map[string]bool{}
		first := true
		member := func(k string) error {
			if !first {
				buf.WriteByte(',')
			}
			first = false
			kb, err := json.Marshal(k)
			if err != nil {
				return err
			}
			buf.Write(kb)
			buf.WriteByte(':')
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if k == "<<" {
				return fmt.Errorf("line %d: merge keys are not supported", n.Content[i].Line)
			}
			if err := member(k); err != nil {
				return err
			}
			seen[k] = true
			if raw, ok := add[k]; ok {
				buf.Write(raw)
				continue
			}
			child := k
			if path != "" {
				child = path + "/" + k
			}
			if err := writeJSON(buf, n.Content[i+1], child, extra); err != nil {
				return err
			}
		}
		for _, k := range slices.Sorted(maps.Keys(add)) {
			if seen[k] {
				continue
			}
			if err := member(k); err != nil {
				return err
			}
			buf.Write(add[k])
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, c, path+"/"+strconv.Itoa(i), extra); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		return writeScalar(buf, n)
	default:
		return fmt.Errorf("line %d: unexpected YAML node", n.Line)
	}
	return nil
}

// writeScalar writes a YAML scalar as the JSON value of its resolved tag.
func writeScalar(buf *bytes.Buffer, n *yaml.Node) error {
	var v any
	switch n.ShortTag() {
	case "!!str", "!!binary", "!!timestamp":
		v = n.Value
	case "!!null":
		v = nil
	default: // !!int, !!float, !!bool
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	buf.Write(b)
	return nil
}
