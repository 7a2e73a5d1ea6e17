package crl

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"strings"
)

// Partitions of an issuing CA's CRL. Partition 0 is the CA's whole-CA CRL,
// BASE/crl/{ca}.crl: every certificate issued while the CA had one
// partition names it, so it stays published whatever the partition count
// becomes. With N > 1 partitions a certificate belongs to partition
// 1 … N, chosen from its serial (Partition) when it is issued and named in
// its CRL distribution point, BASE/crl/{ca}-{n}.crl; the store records it
// with the certificate, and it never changes. The count may grow later
// (new certificates spread over more partitions; every published partition
// keeps the entries recorded for it); certificates keep naming theirs.

// MaxPartitions bounds the partition count of a CA: 1024 partitions of
// 100,000 entries hold a hundred million revocations, and each partition is
// a CRL to sign at every regeneration.
const MaxPartitions = 1024

// Partition returns the partition a certificate with that serial belongs
// to when its CA has partitions partitions: 0 (the whole-CA CRL) for one
// partition, else 1 + (the first 8 bytes of SHA-256 over the serial's
// big-endian magnitude) mod partitions. Serials are random (64 bits or
// more), so the partitions fill evenly however many certificates are
// issued; hashing keeps that true for any serial scheme.
func Partition(serial *big.Int, partitions int) int {
	if partitions <= 1 || serial == nil {
		return 0
	}
	sum := sha256.Sum256(serial.Bytes())
	return 1 + int(binary.BigEndian.Uint64(sum[:8])%uint64(partitions))
}

// FileName is the file name of one partition's CRL: "{ca}.crl" for
// partition 0, "{ca}-{n}.crl" for partition n.
func FileName(ca string, partition int) string {
	if partition == 0 {
		return ca + ".crl"
	}
	return fmt.Sprintf("%s-%d.crl", ca, partition)
}

// URL is the distribution point of one partition: BASE/crl/{FileName}.
func URL(base, ca string, partition int) string {
	return strings.TrimRight(base, "/") + "/crl/" + FileName(ca, partition)
}

// PartitionURL is the CRL distribution point URL to put into a certificate
// with the given serial: URL(base, ca, Partition(serial, partitions)).
func PartitionURL(base, ca string, serial *big.Int, partitions int) string {
	return URL(base, ca, Partition(serial, partitions))
}

// PartitionsFor suggests a partition count for a CA expected to hold at most
// maxRevoked revoked certificates over its lifetime: ceil(maxRevoked /
// maxPerPartition), at least 1. The count may grow later, never usefully
// shrink: issued certificates carry their partition's URL.
func PartitionsFor(maxRevoked, maxPerPartition int) int {
	if maxRevoked <= 0 || maxPerPartition <= 0 {
		return 1
	}
	return max(1, (maxRevoked+maxPerPartition-1)/maxPerPartition)
}
