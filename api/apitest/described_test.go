package apitest

import (
	"slices"
	"strings"
	"testing"
)

// Every member of every captured example is described by the schema of
// the media type that shows it: an integrator reading the document finds
// each key of a real answer in it (what the server's answers carry, the
// walk-through captures; TestWalkthrough checks the live answers the same way).
func TestExamplesDescribeEveryKey(t *testing.T) {
	d, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, u := range d.ExampleUses() {
		value, err := d.ExampleValue(u.Name)
		if err != nil {
			t.Errorf("%s: %v", u.MediaType, err)
			continue
		}
		keys, err := d.Undescribed(u.MediaType, value)
		if err != nil {
			t.Errorf("%s: %v", u.MediaType, err)
			continue
		}
		checked++
		if len(keys) > 0 {
			t.Errorf("example %s at %s has members its schema does not describe: %s", u.Name, u.MediaType, strings.Join(keys, ", "))
		}
	}
	if checked < 30 {
		t.Errorf("only %d examples checked", checked)
	}
}

// Undescribed follows $ref, allOf and array items; additionalProperties
// true or {} describes nothing, a schema under it describes the map's values.
func TestUndescribed(t *testing.T) {
	d, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	d.doc["components"].(map[string]any)["schemas"].(map[string]any)["__test"] = map[string]any{
		"allOf": []any{map[string]any{"$ref": "#/components/schemas/__inner"}},
		"properties": map[string]any{
			"list":   map[string]any{"type": "array", "items": map[string]any{"$ref": "#/components/schemas/__inner"}},
			"labels": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}},
			"loose":  map[string]any{"type": "object", "additionalProperties": map[string]any{}},
		},
		"additionalProperties": true,
	}
	d.doc["components"].(map[string]any)["schemas"].(map[string]any)["__inner"] = map[string]any{
		"type": "object", "properties": map[string]any{"a": map[string]any{"type": "string"}},
	}
	d.doc["paths"].(map[string]any)["/__test"] = map[string]any{"get": map[string]any{"responses": map[string]any{
		"200": map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/__test"}}}},
	}}}
	ptr, err := d.MediaType("GET", "/__test", 200, "application/json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Undescribed(ptr, []byte(`{"a": "x", "b": 1, "list": [{"a": "y", "c": {"d": 1}}], "labels": {"any": "v"}, "loose": {"what": 1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"$.b", "$.list[0].c", "$.loose.what"}; !slices.Equal(got, want) {
		t.Fatalf("Undescribed = %v, want %v", got, want)
	}
}
