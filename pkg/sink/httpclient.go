package sink

import "github.com/kvsgo/kvsgo/pkg/httpx"

// LoopbackOnlyEnv, when set, makes the element refuse to connect to anything
// but loopback addresses (127.0.0.0/8, ::1) and to resolve names through
// DNS (httpx.LoopbackOnlyEnv).
const LoopbackOnlyEnv = httpx.LoopbackOnlyEnv
