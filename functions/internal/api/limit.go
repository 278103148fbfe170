package api

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// clientLimiter keeps a token bucket per client address.
type clientLimiter struct {
	mu      sync.Mutex
	limit   rate.Limit
	burst   int
	buckets map[string]*rate.Limiter
}

// maxClients bounds the memory of the limiter; past it the table starts afresh, which at worst
// forgives a few clients their recent requests.
const maxClients = 10000

func newClientLimiter(limit rate.Limit, burst int) *clientLimiter {
	return &clientLimiter{limit: limit, burst: burst, buckets: map[string]*rate.Limiter{}}
}

func (c *clientLimiter) allow(client string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.buckets[client]
	if !ok {
		if len(c.buckets) >= maxClients {
			c.buckets = map[string]*rate.Limiter{}
		}
		l = rate.NewLimiter(c.limit, c.burst)
		c.buckets[client] = l
	}
	return l.AllowN(now, 1)
}

// clientAddress is the caller's address. Behind one proxy (Google's front end in the cloud, the
// local front server) it is the last entry of X-Forwarded-For, the one the proxy appended: earlier
// entries come from the client and would let it pick its own rate limit.
func clientAddress(r *http.Request) string {
	if fwd := r.Header.Values("X-Forwarded-For"); len(fwd) > 0 {
		last := fwd[len(fwd)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		if last = strings.TrimSpace(last); last != "" {
			return last
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
