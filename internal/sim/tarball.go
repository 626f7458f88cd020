package sim

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// packTarball builds a version's tarball the way npm packs it: gzipped tar, every entry under
// package/, npm's fixed mtime, names sorted so the bytes (and the integrity) are reproducible.
// It lives here rather than in testenv because `npmir rehearse` ships it.
func packTarball(files map[string][]byte) []byte {
	var buf bytes.Buffer
	gz := gzipPool.Get().(*gzip.Writer)
	defer gzipPool.Put(gz)
	gz.Reset(&buf)
	tw := tar.NewWriter(gz)
	mtime := time.Date(1985, 10, 26, 8, 15, 0, 0, time.UTC)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		_ = tw.WriteHeader(&tar.Header{Name: "package/" + name, Mode: 0o644, Size: int64(len(files[name])), ModTime: mtime, Typeflag: tar.TypeReg})
		_, _ = tw.Write(files[name])
	}
	_ = tw.Close()
	_ = gz.Close()
	return buf.Bytes()
}

// gzipPool reuses compressors: a new gzip.Writer allocates ~800 KB, which dominated seeding
// the 300-package scenario.
var gzipPool = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// integrity returns dist.integrity (SRI sha512) and dist.shasum (sha1 hex) of a tarball.
func integrity(tgz []byte) (sri, shasum string) {
	s512 := sha512.Sum512(tgz)
	s1 := sha1.Sum(tgz)
	return "sha512-" + base64.StdEncoding.EncodeToString(s512[:]), hex.EncodeToString(s1[:])
}

// tarballFile is npm's file name for a version's tarball (the scope is dropped).
func tarballFile(name, version string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	return name + "-" + version + ".tgz"
}

// signer holds the registry's ECDSA P-256 key, derived from the seed so packuments (and their
// dist.signatures) are byte-identical across runs with the same seed.
type signer struct {
	key   *ecdsa.PrivateKey
	keyID string
	spki  string // base64 DER SubjectPublicKeyInfo, as /-/npm/v1/keys serves it
}

func newSigner(seed uint64) *signer {
	for i := uint64(0); ; i++ {
		var in [16]byte
		binary.BigEndian.PutUint64(in[:8], seed)
		binary.BigEndian.PutUint64(in[8:], i)
		d := sha256.Sum256(append([]byte("npmir-sim-registry-key"), in[:]...))
		key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
		if err != nil {
			continue // d not below the curve order: astronomically rare, try the next
		}
		der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(der)
		return &signer{key: key, keyID: "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:]), spki: base64.StdEncoding.EncodeToString(der)}
	}
}

// sign produces npm's registry signature over "<name>@<version>:<integrity>" (RFC 6979, so
// deterministic).
func (s *signer) sign(name, version, sri string) string {
	digest := sha256.Sum256([]byte(name + "@" + version + ":" + sri))
	sig, err := s.key.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}
