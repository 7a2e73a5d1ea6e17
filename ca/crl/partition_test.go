package crl

import (
	"crypto/rand"
	"errors"
	"math/big"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestPartitionsStayBalanced: random serials, as the CA draws them, spread
// evenly over the partitions: with 200,000 certificates over 16 partitions
// every partition holds its share within 5 % (the binomial standard
// deviation is under 1 %), and sequential serials spread as evenly.
func TestPartitionsStayBalanced(t *testing.T) {
	const n, parts = 200_000, 16
	for name, serial := range map[string]func(i int) *big.Int{
		"random": func(int) *big.Int {
			b := make([]byte, 16)
			_, _ = rand.Read(b)
			b[0] &= 0x7f
			return new(big.Int).SetBytes(b)
		},
		"sequential": func(i int) *big.Int { return big.NewInt(int64(i + 1)) },
	} {
		counts := make([]int, parts+1)
		for i := range n {
			counts[Partition(serial(i), parts)]++
		}
		if counts[0] != 0 {
			t.Fatalf("%s: %d certificates in partition 0 (the whole-CA CRL)", name, counts[0])
		}
		for p, c := range counts[1:] {
			if share := float64(c) / (n / parts); share < 0.95 || share > 1.05 {
				t.Errorf("%s: partition %d holds %d certificates (%.3f of its share)", name, p+1, c, share)
			}
		}
	}
	if Partition(big.NewInt(12345), 1) != 0 || PartitionURL("http://x.test", "citizen", big.NewInt(12345), 1) != "http://x.test/crl/citizen.crl" {
		t.Fatal("one partition: the whole-CA CRL")
	}
}

// TestPartitionCountFromConfiguration: thiqa.yaml's partitions is a whole
// number from 1 to MaxPartitions; 0, negative, absurd and fractional
// counts are refused with the range named.
func TestPartitionCountFromConfiguration(t *testing.T) {
	var c Config
	if err := yaml.Unmarshal([]byte("partitions: 16\nbaseURL: http://x.test\n"), &c); err != nil || c.Partitions != 16 {
		t.Fatalf("16: %v %v", c.Partitions, err)
	}
	if s, err := c.Validate(); err != nil || s.Partitions != 16 {
		t.Fatalf("validate: %+v %v", s, err)
	}
	for _, v := range []string{"0", "-3", "1025", "1000000", "1.5", "many", `""`} {
		var c Config
		err := yaml.Unmarshal([]byte("partitions: "+v+"\n"), &c)
		if err == nil || !strings.Contains(err.Error(), "from 1 to 1024") {
			t.Errorf("partitions: %s accepted or unclear: %v", v, err)
		}
	}
	if _, err := (Config{BaseURL: "http://x.test", Partitions: MaxPartitions + 1}).Validate(); !errors.Is(err, ErrConfig) {
		t.Errorf("MaxPartitions+1: %v", err)
	}
	// Marshalled back, the count is a plain number.
	out, _ := yaml.Marshal(Config{Partitions: 4})
	if !strings.Contains(string(out), "partitions: 4\n") {
		t.Errorf("marshalled: %s", out)
	}
}
