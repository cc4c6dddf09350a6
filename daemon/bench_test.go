package daemon

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sidehook/sidehook/config"
	"github.com/sidehook/sidehook/delivery"
)

// benchEvent returns a single-event body of about size bytes: a CRM lead
// with a flat object of string, number and boolean fields and a nested
// array, the shape most applications post.
func benchEvent(size int) []byte {
	var b strings.Builder
	b.WriteString(`{"event":"Lead Creation","id":"lead-4711-created","data":{"ProspectID":"4711","FirstName":"Ada","LastName":"Lovelace","EmailAddress":"ada@example.com","Score":87.5,"DoNotCall":false,"Tags":["vip","newsletter"]`)
	for i := 0; b.Len() < size-40; i++ {
		fmt.Fprintf(&b, `,"mx_Custom_%d":"value %d with some text"`, i, i)
	}
	b.WriteString(`}}`)
	return []byte(b.String())
}

// BenchmarkPostEvents measures the CPU that POST /v1/events spends on one
// event of about 1 KiB outside the store: decoding and checking the body,
// then encoding the 202 answer.
func BenchmarkPostEvents(b *testing.B) {
	cat := config.NewCatalog()
	lim := config.DefaultLimits()
	body := benchEvent(1 << 10)
	due := time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)
	accepted := []delivery.Accepted{{
		ID: "evt_0000018f3c2a9b7e0000000000000001",
		Deliveries: []delivery.Planned{
			{ID: "dlv_0000018f3c2a9b7e0000000000000002", Webhook: "crm-new-lead", DueAt: due},
			{ID: "dlv_0000018f3c2a9b7e0000000000000003", Webhook: "analytics", DueAt: due.Add(time.Hour)},
		},
	}}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		events, isArray, err := decodeEvents(body, cat, lim)
		if err != nil || len(events) != 1 {
			b.Fatalf("decode: %d events, %v", len(events), err)
		}
		if _, err := encodeAnswer(accepted, isArray); err != nil {
			b.Fatalf("encode answer: %v", err)
		}
	}
}
