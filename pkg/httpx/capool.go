package httpx

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// maxCAFile bounds one CA file.
const maxCAFile = 1 << 20

// LoadCertPool reads the certificates of a PEM file, or of every regular
// file (or link) in a directory, hashed names such as 5a3f0c2e.0 included,
// into a pool. In a directory, files that cannot be read are skipped. A
// file may be at most 1 MiB. Finding no certificate at all is an error
// naming the path.
func LoadCertPool(path string) (*x509.CertPool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if fi.IsDir() {
		ents, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		files = files[:0]
		for _, e := range ents {
			if e.Type().IsRegular() || e.Type()&os.ModeSymlink != 0 {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
	}
	pool := x509.NewCertPool()
	found := false
	for _, f := range files {
		b, err := readCAFile(f)
		if err != nil {
			if fi.IsDir() {
				continue
			}
			return nil, err
		}
		if pool.AppendCertsFromPEM(b) {
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("no PEM certificate found in %s", path)
	}
	return pool, nil
}

func readCAFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxCAFile {
		return nil, errors.New(path + " is larger than 1 MiB")
	}
	return b, nil
}
