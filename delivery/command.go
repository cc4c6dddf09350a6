package delivery

import (
	"context"
	"time"
)

// commandSender runs a webhook's program with the body on its standard
// input (type: command).
type commandSender struct{}

func newCommandSender() *commandSender { return &commandSender{} }

func (c *commandSender) send(ctx context.Context, m *Message) outcome {
	return outcome{attempt: Attempt{At: time.Now(), Manual: m.Manual, Error: "command webhooks are not supported yet"}, permanent: true}
}
