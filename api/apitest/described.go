package apitest

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Undescribed returns the members of body (JSON) that the schema of the
// media type object at ptr (from MediaType) does not name, as paths such
// as "$.signatures[0].signer.qualification". A schema that validates is
// not enough for an integrator: `additionalProperties: true` or a bare
// `{type: object}` accepts any key without saying what it means. A
// member counts as described when a `properties` or a matching
// `patternProperties` of the schema (through `$ref`, `allOf`, `anyOf` and
// `oneOf`) names it, or when `additionalProperties` is a schema other
// than {} (a map whose values it describes). A member one branch of a
// `oneOf` or `anyOf` names counts as described whichever branch the
// value matches.
func (d *Document) Undescribed(ptr string, body []byte) ([]string, error) {
	sch, err := d.Resolve("#" + ptr + pointer("schema"))
	if err != nil {
		return nil, err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	var out []string
	if err := d.undescribed(inst, []any{sch}, "$", &out); err != nil {
		return nil, err
	}
	slices.Sort(out)
	return out, nil
}

// CheckDescribed validates a response body of an operation (as Check) and
// then requires every member of it to be described (Undescribed).
func (d *Document) CheckDescribed(method, path string, status int, mediaType string, body []byte) error {
	ptr, err := d.MediaType(method, path, status, mediaType)
	if err != nil {
		return err
	}
	if err := d.Validate(ptr, body); err != nil {
		return err
	}
	keys, err := d.Undescribed(ptr, body)
	if err != nil {
		return err
	}
	if len(keys) > 0 {
		return fmt.Errorf("members the schema does not describe: %v", keys)
	}
	return nil
}

// flatten returns the schemas that apply to one value: schemas with their
// $ref followed and their allOf, anyOf and oneOf branches added.
func (d *Document) flatten(schemas []any) ([]map[string]any, error) {
	var out []map[string]any
	var add func(s any, depth int) error
	add = func(s any, depth int) error {
		m, ok := s.(map[string]any)
		if !ok {
			return nil // true, false
		}
		if depth > 32 {
			return fmt.Errorf("schema references nest deeper than 32")
		}
		out = append(out, m)
		if ref, ok := m["$ref"].(string); ok {
			t, err := d.Resolve(ref)
			if err != nil {
				return err
			}
			if err := add(t, depth+1); err != nil {
				return err
			}
		}
		for _, k := range []string{"allOf", "anyOf", "oneOf"} {
			branches, _ := m[k].([]any)
			for _, b := range branches {
				if err := add(b, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, s := range schemas {
		if err := add(s, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// undescribed walks v with the schemas that apply to it, adding to out
// the path of each member none of them describes.
func (d *Document) undescribed(v any, schemas []any, at string, out *[]string) error {
	flat, err := d.flatten(schemas)
	if err != nil {
		return err
	}
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			var sub []any
			for _, m := range flat {
				if props, ok := m["properties"].(map[string]any); ok {
					if p, ok := props[k]; ok {
						sub = append(sub, p)
					}
				}
				if pats, ok := m["patternProperties"].(map[string]any); ok {
					for pat, p := range pats {
						if re, err := regexp.Compile(pat); err == nil && re.MatchString(k) {
							sub = append(sub, p)
						}
					}
				}
				if ap, ok := m["additionalProperties"].(map[string]any); ok && len(ap) > 0 { // {} is true: it describes nothing
					sub = append(sub, ap)
				}
			}
			path := at + "." + k
			if len(sub) == 0 {
				*out = append(*out, path)
				continue
			}
			if err := d.undescribed(c, sub, path, out); err != nil {
				return err
			}
		}
	case []any:
		for i, c := range x {
			var sub []any
			for _, m := range flat {
				if prefix, ok := m["prefixItems"].([]any); ok && i < len(prefix) {
					sub = append(sub, prefix[i])
				} else if items, ok := m["items"]; ok {
					sub = append(sub, items)
				}
			}
			if err := d.undescribed(c, sub, at+"["+strconv.Itoa(i)+"]", out); err != nil {
				return err
			}
		}
	}
	return nil
}
