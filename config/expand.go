package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// expand replaces references in one scalar value, after YAML parsing, so an
// expanded value can never change the file's structure:
//
//   - ${VAR} becomes the environment variable VAR; an unset VAR is an
//     error (an empty one is fine).
//   - ${file:PATH} becomes the contents of the file at PATH with trailing
//     newlines trimmed; a relative PATH is relative to dir, the folder of
//     the configuration file.
//   - $${ is an escape for a literal ${, for values that must contain that
//     text. A $ not followed by { stays as it is.
//
// Expanded text is not expanded again. expanded reports whether any
// reference was replaced, which marks header values as secret.
func expand(s, dir string) (out string, expanded bool, err error) {
	if !strings.Contains(s, "${") {
		return s, false, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), expanded, nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1] + "${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", false, fmt.Errorf("unterminated ${ (close it with }, or write $${ for a literal ${)")
		}
		val, err := lookup(s[i+2:i+end], dir)
		if err != nil {
			return "", false, err
		}
		b.WriteString(val)
		expanded = true
		s = s[i+end+1:]
	}
}

// lookup returns the value of the reference inside ${...}.
func lookup(ref, dir string) (string, error) {
	if path, ok := strings.CutPrefix(ref, "file:"); ok {
		if path == "" {
			return "", fmt.Errorf("${file:} needs a path, as in ${file:/run/secrets/token}")
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		data, err := readValueFile(path)
		if err != nil {
			return "", fmt.Errorf("read ${file:%s}: %w", ref[len("file:"):], err)
		}
		return strings.TrimRight(string(data), "\r\n"), nil
	}
	if !validEnvName(ref) {
		return "", fmt.Errorf("${%s}: not a variable name (use ${NAME} with letters, digits and _, or ${file:PATH})", ref)
	}
	val, ok := os.LookupEnv(ref)
	if !ok {
		return "", fmt.Errorf("environment variable %s is not set (set it in sidehook's environment, or write $${ for a literal ${)", ref)
	}
	return val, nil
}

// validEnvName reports whether s is a portable environment variable name:
// a letter or _, then letters, digits and _.
func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
		case i > 0 && '0' <= r && r <= '9':
		default:
			return false
		}
	}
	return true
}

// maxValueFile bounds what ${file:...} reads: it is for secrets and short
// values, and a path such as /dev/zero must not fill the memory.
const maxValueFile = 1 << 20

// readValueFile reads the file of a ${file:...} reference.
func readValueFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxValueFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxValueFile {
		return nil, fmt.Errorf("%s is larger than 1 MiB; ${file:...} is for secrets and short values", path)
	}
	return data, nil
}
