package crl

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"strings"
)

// Partition returns the partition (0 … partitions-1) a certificate serial
// belongs to: the first 8 bytes of SHA-256 over the serial's big-endian
// magnitude, modulo partitions. The store records it with the certificate at
// issuance so RevokedSource can select a partition with an index.
func Partition(serial *big.Int, partitions int) int {
	if partitions <= 1 || serial == nil {
		return 0
	}
	sum := sha256.Sum256(serial.Bytes())
	return int(binary.BigEndian.Uint64(sum[:8]) % uint64(partitions))
}

// FileName is the file name of a CA's CRL: "{ca}.crl" when the CA has one
// partition, "{ca}-{n}.crl" otherwise.
func FileName(ca string, partition, partitions int) string {
	if partitions <= 1 {
		return ca + ".crl"
	}
	return fmt.Sprintf("%s-%d.crl", ca, partition)
}

// URL is the distribution point of one partition: BASE/crl/{FileName}.
func URL(base, ca string, partition, partitions int) string {
	return strings.TrimRight(base, "/") + "/crl/" + FileName(ca, partition, partitions)
}

// PartitionURL is the CRL distribution point URL to put into a certificate
// with the given serial: BASE/crl/{ca}.crl when partitions is 1, else
// BASE/crl/{ca}-{n}.crl with n = Partition(serial, partitions).
func PartitionURL(base, ca string, serial *big.Int, partitions int) string {
	return URL(base, ca, Partition(serial, partitions), partitions)
}

// PartitionsFor suggests a partition count for a CA expected to hold at most
// maxRevoked revoked certificates over its lifetime: ceil(maxRevoked /
// maxPerPartition), at least 1. Choose it once when the CA is created and
// never change it: issued certificates carry their partition's URL.
func PartitionsFor(maxRevoked, maxPerPartition int) int {
	if maxRevoked <= 0 || maxPerPartition <= 0 {
		return 1
	}
	return max(1, (maxRevoked+maxPerPartition-1)/maxPerPartition)
}
