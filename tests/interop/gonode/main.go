// gonode runs one node of the reference Go library
// (github.com/andydunstall/scuttlebutt) for the interop test: flags
// configure it, its events are printed as JSON lines on stdout, and
// stdin takes commands, in the shape of `scuttlebutt agent`.
//
//	gonode -bind 127.0.0.1:0 [-seed ADDR]... [-interval MS] [-set K=V]...
//
// stdout: {"event":"ready","addr":A}, then {"event":"join"|"leave",
// "peer":P,"time_ms":T} and {"event":"update","peer":P,"key":K,
// "value":V,"time_ms":T}. stdin: "set K V", "get PEER K", "peers",
// "quit"; each answered by one {"ok":...} line.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/andydunstall/scuttlebutt"
	"go.uber.org/zap"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

var (
	out   = bufio.NewWriter(os.Stdout)
	outMu sync.Mutex
	start = time.Now()
)

func emit(v map[string]interface{}) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	outMu.Lock()
	defer outMu.Unlock()
	out.Write(b)
	out.WriteByte('\n')
	out.Flush()
}

func event(kind, peer string, extra map[string]interface{}) {
	v := map[string]interface{}{
		"event":   kind,
		"peer":    peer,
		"time_ms": time.Since(start).Milliseconds(),
	}
	for k, x := range extra {
		v[k] = x
	}
	emit(v)
}

func main() {
	bind := flag.String("bind", "127.0.0.1:0", "address to bind")
	interval := flag.Int("interval", 100, "gossip interval in ms")
	var seeds, sets list
	flag.Var(&seeds, "seed", "a seed address; repeatable")
	flag.Var(&sets, "set", "KEY=VALUE to publish at start; repeatable")
	flag.Parse()

	node, err := scuttlebutt.Create(*bind,
		scuttlebutt.WithSeedCB(func() []string { return seeds }),
		scuttlebutt.WithInterval(time.Duration(*interval)*time.Millisecond),
		scuttlebutt.WithLogger(zap.NewNop()),
		scuttlebutt.WithOnJoin(func(p string) { event("join", p, nil) }),
		scuttlebutt.WithOnLeave(func(p string) { event("leave", p, nil) }),
		scuttlebutt.WithOnUpdate(func(p, k, v string) {
			event("update", p, map[string]interface{}{"key": k, "value": v})
		}),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gonode:", err)
		os.Exit(1)
	}
	for _, kv := range sets {
		k, v, _ := strings.Cut(kv, "=")
		node.UpdateLocal(k, v)
	}
	emit(map[string]interface{}{"event": "ready", "addr": node.BindAddr()})

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.SplitN(strings.TrimSpace(in.Text()), " ", 3)
		switch {
		case f[0] == "set" && len(f) == 3:
			node.UpdateLocal(f[1], f[2])
			emit(map[string]interface{}{"ok": true})
		case f[0] == "get" && len(f) == 3:
			v, ok := node.Lookup(f[1], f[2])
			emit(map[string]interface{}{"ok": ok, "value": v})
		case f[0] == "peers":
			var peers []string
			for _, a := range node.Addrs() {
				if a != node.BindAddr() {
					peers = append(peers, a)
				}
			}
			emit(map[string]interface{}{"ok": true, "peers": peers})
		case f[0] == "quit":
			emit(map[string]interface{}{"ok": true})
			node.Shutdown()
			return
		default:
			emit(map[string]interface{}{"ok": false, "error": "unknown command"})
		}
	}
	// end of stdin: run until killed
	select {}
}
