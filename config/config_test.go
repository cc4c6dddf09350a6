package config

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestCatalog_Lookup(t *testing.T) {
	cat := NewCatalog(EventType{Name: "Invoice Paid", Code: "Invoice_Post_Paid"})
	tests := []struct {
		in       string
		wantCode string
		wantOK   bool
	}{
		{"Lead Creation", "Lead_Post_Create", true},
		{"lead creation", "Lead_Post_Create", true},
		{"LEAD CREATION", "Lead_Post_Create", true},
		{"Lead_Post_Create", "Lead_Post_Create", true},
		{"lead_post_create", "", false}, // codes match exactly
		{"Opportunity Stage/Status Change", "Opportunity_Post_StatusChange", true},
		{"invoice paid", "Invoice_Post_Paid", true},
		{"Invoice_Post_Paid", "Invoice_Post_Paid", true},
		{"Lead Creaton", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			et, ok := cat.Lookup(tt.in)
			if ok != tt.wantOK || et.Code != tt.wantCode {
				t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tt.in, et.Code, ok, tt.wantCode, tt.wantOK)
			}
		})
	}
}

func TestCatalog_Builtin(t *testing.T) {
	types := NewCatalog().Types()
	if got, want := len(types), 39; got != want {
		t.Fatalf("built-in catalog has %d types, want %d", got, want)
	}
	var batched []string
	for _, et := range types {
		if et.Batched {
			batched = append(batched, et.Code)
		}
	}
	got := fmt.Sprint(batched)
	want := "[AccountActivity_Post_Create AccountActivity_Post_Update LeadActivity_Post_Create LeadActivity_Post_Update SalesActivity_Post_Create SalesActivity_Post_Update SalesActivity_Post_Cancel]"
	if got != want {
		t.Errorf("batched by default:\n got %s\nwant %s", got, want)
	}
}

func TestCatalog_Suggest(t *testing.T) {
	cat := NewCatalog()
	tests := []struct{ in, want string }{
		{"Lead Creaton", "Lead Creation"},
		{"lead creatoin", "Lead Creation"},
		{"Task Complet", "Task Complete"},
		{"Lead_Post_Craete", "Lead_Post_Create"},
		{"Sales Activity Created", "Sales Activity Create"},
		{"Something Else Entirely", ""},
		{"xyzzy", ""},
	}
	for _, tt := range tests {
		if got := cat.Suggest(tt.in); got != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCatalog_UnknownEventError(t *testing.T) {
	cat := NewCatalog()
	got := cat.UnknownEventError("Lead Creaton")
	want := `unknown event "Lead Creaton" (did you mean "Lead Creation"? see: sidehook events)`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	got = cat.UnknownEventError("xyzzy")
	want = `unknown event "xyzzy" (see: sidehook events)`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestWebhook_BatchFor(t *testing.T) {
	cat := NewCatalog()
	activity, _ := cat.Lookup("Lead Activity Creation")
	lead, _ := cat.Lookup("Lead Creation")
	tests := []struct {
		name   string
		w      Webhook
		et     EventType
		want   Batch
		wantOK bool
	}{
		{"activity on JSON", Webhook{ContentType: ContentJSON}, activity, Batch{Window: time.Minute, Max: 100}, true},
		{"non-activity on JSON", Webhook{ContentType: ContentJSON}, lead, Batch{}, false},
		{"activity on form", Webhook{ContentType: ContentForm}, activity, Batch{}, false},
		{"activity on text", Webhook{ContentType: ContentText}, activity, Batch{}, false},
		{"batch off", Webhook{ContentType: ContentJSON, BatchOff: true}, activity, Batch{}, false},
		{"explicit batch on non-activity", Webhook{ContentType: ContentJSON, Batch: &Batch{Window: 5 * time.Second, Max: 10}}, lead, Batch{Window: 5 * time.Second, Max: 10}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.w.BatchFor(tt.et)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("BatchFor(%s) = %+v, %v; want %+v, %v", tt.et.Code, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestWebhook_IsSuccess(t *testing.T) {
	any2xx := &Webhook{}
	only200 := &Webhook{SuccessStatus: []int{200}}
	for _, tt := range []struct {
		w      *Webhook
		status int
		want   bool
	}{
		{any2xx, 200, true}, {any2xx, 204, true}, {any2xx, 299, true},
		{any2xx, 301, false}, {any2xx, 500, false},
		{only200, 200, true}, {only200, 204, false},
	} {
		if got := tt.w.IsSuccess(tt.status); got != tt.want {
			t.Errorf("IsSuccess(%d) with success_status %v = %v, want %v", tt.status, tt.w.SuccessStatus, got, tt.want)
		}
	}
}

func TestErrors_Format(t *testing.T) {
	errs := Errors{
		{Pos: Pos{File: "webhooks.yaml", Line: 14, Col: 9}, Msg: `webhooks[2].url: must be http or https (got "ftp://x")`},
		{Pos: Pos{File: "webhooks.d"}, Msg: "read webhooks.d folder: permission denied"},
	}
	var err error = errs
	got := err.Error()
	want := "webhooks.yaml:14:9: webhooks[2].url: must be http or https (got \"ftp://x\")\n" +
		"webhooks.d: read webhooks.d folder: permission denied"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	var target Errors
	if !errors.As(err, &target) || len(target) != 2 {
		t.Errorf("errors.As(err, &Errors{}) = %v with %d errors, want true with 2", errors.As(err, &target), len(target))
	}
	var one *Error
	if !errors.As(err, &one) || one.Pos.Line != 14 {
		t.Errorf("errors.As(err, &*Error) did not find the first error: %v", one)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"500ms", 500 * time.Millisecond},
		{"30s", 30 * time.Second},
		{"1m", time.Minute},
		{"720h", 720 * time.Hour},
		{"1h30m", 90 * time.Minute},
		{"30", 30 * time.Second},
		{"1.5", 1500 * time.Millisecond},
		{"0", 0},
		{"-5", -5 * time.Second},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "7d", "ten", "1e3", "0x10", "inf", "1.", ".5", "99999999999999999999"} {
		if got, err := parseDuration(bad); err == nil {
			t.Errorf("parseDuration(%q) = %v, want an error", bad, got)
		}
	}
}

func TestExpand(t *testing.T) {
	t.Setenv("SIDEHOOK_TEST_TOKEN", "s3cret")
	t.Setenv("SIDEHOOK_TEST_EMPTY", "")
	tests := []struct {
		in, want     string
		wantExpanded bool
	}{
		{"plain", "plain", false},
		{"${SIDEHOOK_TEST_TOKEN}", "s3cret", true},
		{"Bearer ${SIDEHOOK_TEST_TOKEN}!", "Bearer s3cret!", true},
		{"${SIDEHOOK_TEST_TOKEN}${SIDEHOOK_TEST_TOKEN}", "s3crets3cret", true},
		{"[${SIDEHOOK_TEST_EMPTY}]", "[]", true},
		{"price $5 and $HOME", "price $5 and $HOME", false},
		{"literal $${SIDEHOOK_TEST_TOKEN}", "literal ${SIDEHOOK_TEST_TOKEN}", false},
		{"$${a} and ${SIDEHOOK_TEST_TOKEN}", "${a} and s3cret", true},
	}
	for _, tt := range tests {
		got, expanded, err := expand(tt.in, ".")
		if err != nil || got != tt.want || expanded != tt.wantExpanded {
			t.Errorf("expand(%q) = %q, %v, %v; want %q, %v", tt.in, got, expanded, err, tt.want, tt.wantExpanded)
		}
	}
}
