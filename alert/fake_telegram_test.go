package alert_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf16"
)

const testToken = "123456789:AAFakeSecretTokenForTestsOnly_xyz"

// fakeTelegram speaks the Bot API's sendMessage and getChat: it checks the token in
// the path, parses the MarkdownV2 text as Telegram does (rejecting an
// unescaped reserved character or an unclosed bold entity), enforces the
// 4096-character limit, and answers with Telegram's JSON bodies. Scripted
// replies (429 with retry_after, 5xx, ...) are served first.
type fakeTelegram struct {
	*httptest.Server
	mu       sync.Mutex
	script   []fakeReply
	messages []sentMessage
	requests int
	// chats, when set, are the chats the bot can reach (getChat answers
	// "chat not found" for any other); nil reaches every chat.
	chats []string
}

type fakeReply struct {
	status int
	body   string
}

type sentMessage struct {
	ChatID              string `json:"chat_id"`
	Text                string `json:"text"`
	ParseMode           string `json:"parse_mode"`
	DisableNotification bool   `json:"disable_notification"`
}

func newFakeTelegram(t *testing.T, script ...fakeReply) *fakeTelegram {
	f := &fakeTelegram{script: script}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func apiError(code int, desc string) fakeReply {
	return fakeReply{code, fmt.Sprintf(`{"ok":false,"error_code":%d,"description":%q}`, code, desc)}
}

func tooMany(retryAfter int) fakeReply {
	return fakeReply{429, fmt.Sprintf(`{"ok":false,"error_code":429,"description":"Too Many Requests: retry after %d","parameters":{"retry_after":%d}}`, retryAfter, retryAfter)}
}

func (f *fakeTelegram) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	reply := func(fr fakeReply) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(fr.status)
		_, _ = w.Write([]byte(fr.body))
	}
	if len(f.script) > 0 {
		next := f.script[0]
		f.script = f.script[1:]
		reply(next)
		return
	}
	if r.URL.Path == "/bot"+testToken+"/getChat" {
		var q struct {
			ChatID string `json:"chat_id"`
		}
		switch {
		case json.NewDecoder(r.Body).Decode(&q) != nil || q.ChatID == "":
			reply(apiError(400, "Bad Request: chat_id is empty"))
		case f.chats != nil && !slices.Contains(f.chats, q.ChatID):
			reply(apiError(400, "Bad Request: chat not found"))
		default:
			reply(fakeReply{200, fmt.Sprintf(`{"ok":true,"result":{"id":%s,"title":"alerts","type":"channel"}}`, q.ChatID)})
		}
		return
	}
	if r.URL.Path != "/bot"+testToken+"/sendMessage" {
		if strings.HasSuffix(r.URL.Path, "/sendMessage") || strings.HasSuffix(r.URL.Path, "/getChat") {
			reply(apiError(401, "Unauthorized"))
		} else {
			reply(apiError(404, "Not Found"))
		}
		return
	}
	var m sentMessage
	if r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&m) != nil {
		reply(apiError(400, "Bad Request: message text is empty"))
		return
	}
	if m.ParseMode != "MarkdownV2" {
		reply(apiError(400, "Bad Request: unsupported parse_mode"))
		return
	}
	plain, err := parseMarkdownV2(m.Text)
	if err != nil {
		reply(apiError(400, "Bad Request: can't parse entities: "+err.Error()))
		return
	}
	if n := len(utf16.Encode([]rune(plain))); n > 4096 {
		reply(apiError(400, "Bad Request: message is too long"))
		return
	}
	if strings.TrimSpace(plain) == "" {
		reply(apiError(400, "Bad Request: message text is empty"))
		return
	}
	f.messages = append(f.messages, m)
	reply(fakeReply{200, fmt.Sprintf(`{"ok":true,"result":{"message_id":%d,"chat":{"id":-100123,"type":"channel"},"date":1764072000,"text":%q}}`, len(f.messages), plain)})
}

func (f *fakeTelegram) sent() []sentMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentMessage(nil), f.messages...)
}

// parseMarkdownV2 returns the plain text of a MarkdownV2 message using only
// escapes and bold, or the error Telegram would report.
func parseMarkdownV2(s string) (string, error) {
	var b strings.Builder
	bold := false
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		switch c := rs[i]; {
		case c == '\\':
			if i+1 >= len(rs) || rs[i+1] < 1 || rs[i+1] > 126 {
				return "", fmt.Errorf("character '\\' at %d must be followed by an escapable character", i)
			}
			i++
			b.WriteRune(rs[i])
		case c == '*':
			bold = !bold
		case strings.ContainsRune("_[]()~`>#+-=|{}.!", c):
			return "", fmt.Errorf("character '%c' is reserved and must be escaped with the preceding '\\'", c)
		default:
			b.WriteRune(c)
		}
	}
	if bold {
		return "", fmt.Errorf("can't find end of Bold entity")
	}
	return b.String(), nil
}
