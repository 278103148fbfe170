package queryapi

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// clientLimiter keeps a token bucket per client.
type clientLimiter struct {
	mu      sync.Mutex
	limit   rate.Limit
	burst   int
	buckets map[string]*rate.Limiter
}

// maxClients bounds the memory of the limiter.
const maxClients = 10000

func newClientLimiter(limit rate.Limit, burst int) *clientLimiter {
	return &clientLimiter{limit: limit, burst: burst, buckets: map[string]*rate.Limiter{}}
}

// newEveryLimiter limits each client to one request every every on average, burst at once; nil
// (no limit) for a zero every.
func newEveryLimiter(every time.Duration, burst int) *clientLimiter {
	if every <= 0 {
		return nil
	}
	return newClientLimiter(rate.Every(every), burst)
}

// retryAfter is the Retry-After, in whole seconds, of a client past its limit: the time one
// request takes to come back.
func (c *clientLimiter) retryAfter() string {
	return strconv.Itoa(max(1, int(math.Ceil(1/float64(c.limit)))))
}

// allow takes one request of client's; a nil limiter allows every request.
func (c *clientLimiter) allow(client string, now time.Time) bool {
	if c == nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.buckets[client]
	if !ok {
		if len(c.buckets) >= maxClients {
			c.evictIdle(now)
		}
		l = rate.NewLimiter(c.limit, c.burst)
		c.buckets[client] = l
	}
	return l.AllowN(now, 1)
}

// evictIdle forgets the clients whose bucket has refilled: forgetting them changes nothing. Clients
// still being limited stay, so a flood of new addresses cannot reset anyone's limit.
func (c *clientLimiter) evictIdle(now time.Time) {
	for k, l := range c.buckets {
		if l.TokensAt(now) >= float64(c.burst) {
			delete(c.buckets, k)
		}
	}
}

// clientKey is what a client is limited by. Behind the given number of trusted proxies (Google's
// front end in the cloud, the local front server) it is the entry those proxies appended to
// X-Forwarded-For, counted from the right: the entries before it are the client's own to set. An
// IPv6 client is limited by its /64, the block one subscriber usually gets.
func clientKey(r *http.Request, trustedProxies int) string {
	addr := ""
	if trustedProxies > 0 {
		var hops []string
		for _, v := range r.Header.Values("X-Forwarded-For") {
			for _, h := range strings.Split(v, ",") {
				hops = append(hops, strings.TrimSpace(h))
			}
		}
		if i := len(hops) - trustedProxies; i >= 0 && i < len(hops) {
			addr = hops[i]
		}
	}
	if addr == "" {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		addr = host
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	if ip = ip.Unmap(); ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
