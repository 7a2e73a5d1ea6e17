package path

import (
	"crypto/x509"
	"errors"
	"sort"
)

const anyPolicy = "2.5.29.32.0"

// policyNode is a node of the RFC 5280 §6.1.2 valid_policy_tree.
type policyNode struct {
	valid    string
	expected map[string]bool
	parent   *policyNode
	children []*policyNode
	depth    int
}

// maxPolicyNodes bounds the valid_policy_tree (policy-mapping explosions
// are a known denial of service).
const maxPolicyNodes = 10000

type policyState struct {
	nodes        int
	tooBig       bool
	levels       [][]*policyNode // levels[d] = nodes at depth d; nil tree = levels == nil
	explicit     int
	anyInhibit   int
	mapInhibit   int
	userPolicies map[string]bool // nil = {anyPolicy}
}

func newPolicyState(o Options, n int) *policyState {
	root := &policyNode{valid: anyPolicy, expected: map[string]bool{anyPolicy: true}}
	st := &policyState{levels: [][]*policyNode{{root}}, explicit: n + 1, anyInhibit: n + 1, mapInhibit: n + 1}
	if o.InitialExplicitPolicy {
		st.explicit = 0
	}
	if o.InitialAnyPolicyInhibit {
		st.anyInhibit = 0
	}
	if o.InitialPolicyMappingInhibit {
		st.mapInhibit = 0
	}
	if len(o.InitialPolicies) > 0 {
		st.userPolicies = map[string]bool{}
		for _, p := range o.InitialPolicies {
			st.userPolicies[p] = true
		}
		if st.userPolicies[anyPolicy] {
			st.userPolicies = nil
		}
	}
	return st
}

func certPolicies(c *x509.Certificate) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range c.Policies {
		s := p.String()
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if len(c.Policies) == 0 {
		for _, p := range c.PolicyIdentifiers {
			s := p.String()
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	return out
}

func (st *policyState) addChild(parent *policyNode, valid string, expected map[string]bool, depth int) {
	if st.nodes >= maxPolicyNodes {
		st.tooBig = true
		return
	}
	st.nodes++
	n := &policyNode{valid: valid, expected: expected, parent: parent, depth: depth}
	parent.children = append(parent.children, n)
	for len(st.levels) <= depth {
		st.levels = append(st.levels, nil)
	}
	st.levels[depth] = append(st.levels[depth], n)
}

// prune removes childless nodes above depth d (bottom up); if the root goes
// the tree becomes NULL.
func (st *policyState) prune(d int) {
	for depth := d - 1; depth >= 0; depth-- {
		var keep []*policyNode
		for _, n := range st.levels[depth] {
			if len(n.children) > 0 {
				keep = append(keep, n)
			} else if n.parent != nil {
				n.parent.children = remove(n.parent.children, n)
			}
		}
		st.levels[depth] = keep
	}
	if len(st.levels[0]) == 0 {
		st.levels = nil
	}
}

func remove(list []*policyNode, x *policyNode) []*policyNode {
	out := list[:0]
	for _, n := range list {
		if n != x {
			out = append(out, n)
		}
	}
	return out
}

// processCert runs §6.1.3 (d) to (f) for certificate i.
func (st *policyState) processCert(c *x509.Certificate, i, n int, selfIss bool) error {
	pols := certPolicies(c)
	if st.levels != nil && len(pols) > 0 {
		hasAny := false
		for _, p := range pols {
			if p == anyPolicy {
				hasAny = true
				continue
			}
			matched := false
			for _, n := range st.levels[i-1] {
				if n.expected[p] {
					st.addChild(n, p, map[string]bool{p: true}, i)
					matched = true
				}
			}
			if !matched {
				for _, n := range st.levels[i-1] {
					if n.valid == anyPolicy {
						st.addChild(n, p, map[string]bool{p: true}, i)
					}
				}
			}
		}
		if hasAny && (st.anyInhibit > 0 || (selfIss && i < n)) {
			for _, n := range st.levels[i-1] {
				have := map[string]bool{}
				for _, ch := range n.children {
					have[ch.valid] = true
				}
				for _, e := range sortedKeys(n.expected) {
					if !have[e] {
						st.addChild(n, e, map[string]bool{e: true}, i)
					}
				}
			}
		}
		for len(st.levels) <= i {
			st.levels = append(st.levels, nil)
		}
		st.prune(i)
		if st.levels != nil && len(st.levels[i]) == 0 {
			st.levels = nil
		}
	} else {
		st.levels = nil
	}
	if st.tooBig {
		return errors.New("certificate policy tree exceeds the processing limit")
	}
	if st.explicit <= 0 && st.levels == nil {
		return errors.New("no valid set of policies")
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// prepare runs the policy parts of §6.1.4 (a), (b), (h), (i), (j).
func (st *policyState) prepare(c *x509.Certificate, i int, selfIss bool) error {
	mapped := map[string][]string{}
	var order []string
	for _, m := range c.PolicyMappings {
		idp, sdp := m.IssuerDomainPolicy.String(), m.SubjectDomainPolicy.String()
		if idp == anyPolicy || sdp == anyPolicy {
			return errors.New("policy mapping to or from anyPolicy")
		}
		if _, ok := mapped[idp]; !ok {
			order = append(order, idp)
		}
		mapped[idp] = append(mapped[idp], sdp)
	}
	if st.levels != nil && len(mapped) > 0 {
		if st.mapInhibit > 0 {
			for _, idp := range order {
				exp := map[string]bool{}
				for _, s := range mapped[idp] {
					exp[s] = true
				}
				found := false
				for _, n := range st.levels[i] {
					if n.valid == idp {
						n.expected = exp
						found = true
					}
				}
				if !found {
					for _, n := range st.levels[i] {
						if n.valid == anyPolicy {
							st.addChild(n.parent, idp, exp, i)
							break
						}
					}
				}
			}
		} else {
			var keep []*policyNode
			for _, n := range st.levels[i] {
				if _, ok := mapped[n.valid]; ok {
					n.parent.children = remove(n.parent.children, n)
				} else {
					keep = append(keep, n)
				}
			}
			st.levels[i] = keep
			st.prune(i)
			if st.levels != nil && len(st.levels[i]) == 0 {
				st.levels = nil
			}
		}
	}
	if !selfIss {
		if st.explicit > 0 {
			st.explicit--
		}
		if st.mapInhibit > 0 {
			st.mapInhibit--
		}
		if st.anyInhibit > 0 {
			st.anyInhibit--
		}
	}
	if v, ok := constraintValue(c.RequireExplicitPolicy, c.RequireExplicitPolicyZero); ok && v < st.explicit {
		st.explicit = v
	}
	if v, ok := constraintValue(c.InhibitPolicyMapping, c.InhibitPolicyMappingZero); ok && v < st.mapInhibit {
		st.mapInhibit = v
	}
	if v, ok := constraintValue(c.InhibitAnyPolicy, c.InhibitAnyPolicyZero); ok && v < st.anyInhibit {
		st.anyInhibit = v
	}
	return nil
}

func constraintValue(v int, zero bool) (int, bool) {
	if v > 0 {
		return v, true
	}
	if v == 0 && zero {
		return 0, true
	}
	return 0, false
}

// wrapUp runs §6.1.5 (a), (b), (g) and returns the authorities-constrained
// policy set intersected with the user's.
func (st *policyState) wrapUp(c *x509.Certificate, n int) ([]string, error) {
	if st.explicit > 0 {
		st.explicit--
	}
	if v, ok := constraintValue(c.RequireExplicitPolicy, c.RequireExplicitPolicyZero); ok && v == 0 {
		st.explicit = 0
	}
	if st.levels != nil && st.userPolicies != nil {
		// valid_policy_node_set: nodes whose parent is an anyPolicy node.
		for d := 1; d <= n && d < len(st.levels); d++ {
			var keep []*policyNode
			for _, node := range st.levels[d] {
				if node.parent.valid == anyPolicy && node.valid != anyPolicy && !st.userPolicies[node.valid] {
					node.parent.children = remove(node.parent.children, node)
					st.dropSubtree(node)
					continue
				}
				keep = append(keep, node)
			}
			st.levels[d] = keep
		}
		if n < len(st.levels) {
			var anyLeaf *policyNode
			present := map[string]bool{}
			for _, node := range st.levels[n] {
				if node.valid == anyPolicy {
					anyLeaf = node
				} else {
					present[node.valid] = true
				}
			}
			if anyLeaf != nil {
				for _, p := range sortedKeys(st.userPolicies) {
					if !present[p] {
						st.addChild(anyLeaf.parent, p, map[string]bool{p: true}, n)
					}
				}
				anyLeaf.parent.children = remove(anyLeaf.parent.children, anyLeaf)
				st.levels[n] = remove(st.levels[n], anyLeaf)
			}
		}
		if n < len(st.levels) {
			st.prune(n)
		}
		if st.levels != nil && (n >= len(st.levels) || len(st.levels[n]) == 0) {
			st.levels = nil
		}
	}
	if st.explicit <= 0 && st.levels == nil {
		return nil, errors.New("no valid set of policies for the end-entity certificate")
	}
	if st.levels == nil || n >= len(st.levels) {
		return nil, nil
	}
	var out []string
	seen := map[string]bool{}
	for _, node := range st.levels[n] {
		if !seen[node.valid] {
			seen[node.valid] = true
			out = append(out, node.valid)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (st *policyState) dropSubtree(n *policyNode) {
	for _, ch := range n.children {
		if ch.depth < len(st.levels) {
			st.levels[ch.depth] = remove(st.levels[ch.depth], ch)
		}
		st.dropSubtree(ch)
	}
	n.children = nil
}
