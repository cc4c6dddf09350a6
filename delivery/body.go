package delivery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/sidehook/sidehook/config"
)

// encodeBody builds what a receiver gets from the events' data, in arrival
// order: for JSON the data byte for byte (a batch as a JSON array); for a
// form the top-level fields of a JSON object; for text/plain the JSON text.
func encodeBody(contentType string, batch bool, data []json.RawMessage) ([]byte, error) {
	if len(data) == 0 {
		return nil, errors.New("the delivery has no events (were they removed?)")
	}
	switch contentType {
	case config.ContentForm:
		if len(data) != 1 {
			return nil, errors.New("form bodies cannot carry a batch; use application/json")
		}
		return encodeForm(data[0])
	case config.ContentJSON, config.ContentText, "":
		if !batch {
			return data[0], nil
		}
		var b bytes.Buffer
		b.WriteByte('[')
		for i, d := range data {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(d)
		}
		b.WriteByte(']')
		return b.Bytes(), nil
	}
	return nil, fmt.Errorf("unsupported content type %q", contentType)
}

// encodeForm turns a JSON object into form fields: strings as they are,
// other values as their JSON text exactly as posted (12.50 stays 12.50),
// null as empty. Fields keep the object's order.
func encodeForm(data json.RawMessage) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("form body: event data is not valid JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("form body: event data must be a JSON object to be sent as application/x-www-form-urlencoded (got %s)", jsonKind(data))
	}
	var b strings.Builder
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("form body: %w", err)
		}
		name, _ := kt.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("form body: field %q: %w", name, err)
		}
		var value string
		switch {
		case string(raw) == "null":
		case len(raw) > 0 && raw[0] == '"':
			if err := json.Unmarshal(raw, &value); err != nil {
				return nil, fmt.Errorf("form body: field %q: %w", name, err)
			}
		default:
			value = string(raw)
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(name))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(value))
	}
	return []byte(b.String()), nil
}

func jsonKind(data json.RawMessage) string {
	s := bytes.TrimSpace(data)
	if len(s) == 0 {
		return "nothing"
	}
	switch s[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}
