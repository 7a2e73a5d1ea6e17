package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/thiqa/thiqa/internal/atomicfile"
)

// ErrNoRootSection is returned (wrapped) by SetRootOffline for a
// thiqa.yaml without a ca.root section.
var ErrNoRootSection = errors.New("no ca.root section")

// SetRootOffline rewrites dir/thiqa.yaml so that its root is offline
// (ca.root becomes its name and offline: true, as `thiqa init --root-cert`
// writes it): the rest of the file, comments included, stays as it is.
// It reports whether it changed the file; a root offline already is left
// alone. The new file is validated before it replaces the old one.
func SetRootOffline(dir string) (bool, error) {
	path := Path(dir)
	raw, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	old, err := Parse(raw, dir)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	if old.CA.Root.Offline {
		return false, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	var root *yaml.Node
	if len(doc.Content) == 1 {
		root = mappingValue(mappingValue(doc.Content[0], "ca"), "root")
	}
	if root == nil || root.Kind != yaml.MappingNode {
		return false, fmt.Errorf("%s: %w", path, ErrNoRootSection)
	}
	name := mappingValue(root, "name")
	if name == nil {
		name = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "root"}
	}
	root.Content = []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "name"}, name,
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "offline"}, {Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"},
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return false, fmt.Errorf("encoding %s: %w", path, err)
	}
	c, err := Parse(buf.Bytes(), dir)
	if err != nil || !c.CA.Root.Offline {
		return false, fmt.Errorf("%s with an offline root does not validate (nothing was changed): %v", path, err)
	}
	perm := os.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	if err := atomicfile.Write(path, buf.Bytes(), perm); err != nil {
		return false, fmt.Errorf("writing %s: %w", path, err)
	}
	return true, nil
}

// mappingValue returns the value of key in the mapping node m (nil when
// m is not a mapping or has no such key).
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
