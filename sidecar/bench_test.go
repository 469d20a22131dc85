package sidecar

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	zklockv1 "github.com/zklock/zklock/clients/go/zklock/v1"
	"github.com/zklock/zklock/internal/zktest"
	"github.com/zklock/zklock/zkrecipes"
)

// The benchmarks compare one lock cycle (acquire, then release) through the
// sidecar with the same cycle by a Go program embedding go-zookeeper's
// zk.Lock, on the same ZooKeeper in the same run. `make bench` prints each
// result as a ratio to the direct client's.

// benchSidecar starts a Session, Service and gRPC server for a benchmark.
func benchSidecar(b *testing.B, zkAddr string) (zklockv1.LockServiceClient, func()) {
	b.Helper()
	sess, err := zkrecipes.Connect(zkrecipes.Config{Servers: strings.Split(zkAddr, ","), SessionTimeout: 10 * time.Second, Logger: zktest.Logger()})
	if err != nil {
		b.Fatal(err)
	}
	for {
		st, changed := sess.State()
		if st.Epoch != nil {
			break
		}
		<-changed
	}
	svc, err := New(sess, Config{Logger: zktest.Logger()})
	if err != nil {
		b.Fatal(err)
	}
	srv := NewServer(svc, ServerOptions{Logger: zktest.Logger()})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	return zklockv1.NewLockServiceClient(conn), func() {
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		sess.Close()
	}
}

// acquireOnce takes lock through the sidecar and returns the lease id and a
// function that ends the stream.
func acquireOnce(b *testing.B, c zklockv1.LockServiceClient, lock string) (string, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := c.Acquire(ctx, &zklockv1.AcquireRequest{Lock: lock})
	if err != nil {
		b.Fatal(err)
	}
	for {
		r, err := stream.Recv()
		if err != nil {
			b.Fatal(err)
		}
		if g := r.GetGranted(); g != nil {
			return g.GetLeaseId(), cancel
		}
	}
}

func BenchmarkLockCycle(b *testing.B) {
	zkc := zktest.StartStandalone(b)

	b.Run("direct-zk", func(b *testing.B) {
		conn := zktest.Client(b, zkc.ConnectString())
		if _, err := conn.Create("/direct", nil, 0, zk.WorldACL(zk.PermAll)); err != nil && err != zk.ErrNodeExists {
			b.Fatal(err)
		}
		l := zk.NewLock(conn, "/direct/cycle", zk.WorldACL(zk.PermAll))
		b.ResetTimer()
		for b.Loop() {
			if err := l.Lock(); err != nil {
				b.Fatal(err)
			}
			if err := l.Unlock(); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("sidecar-release", func(b *testing.B) {
		c, stop := benchSidecar(b, zkc.ConnectString())
		defer stop()
		ctx := context.Background()
		b.ResetTimer()
		for b.Loop() {
			id, cancel := acquireOnce(b, c, "cycle")
			if _, err := c.Release(ctx, &zklockv1.ReleaseRequest{LeaseId: id}); err != nil {
				b.Fatal(err)
			}
			cancel()
		}
	})

	b.Run("sidecar-stream-close", func(b *testing.B) {
		c, stop := benchSidecar(b, zkc.ConnectString())
		defer stop()
		b.ResetTimer()
		for b.Loop() {
			_, cancel := acquireOnce(b, c, "cycle-close")
			cancel()
		}
	})
}

// BenchmarkContended has 8 callers cycle on one lock: 8 embedded clients
// with a session each, against 8 streams through one sidecar.
func BenchmarkContended(b *testing.B) {
	zkc := zktest.StartStandalone(b)
	const callers = 8

	b.Run("direct-zk", func(b *testing.B) {
		var locks []*zk.Lock
		for range callers {
			conn := zktest.Client(b, zkc.ConnectString())
			conn.Create("/direct", nil, 0, zk.WorldACL(zk.PermAll))
			locks = append(locks, zk.NewLock(conn, "/direct/contended", zk.WorldACL(zk.PermAll)))
		}
		var next atomic.Int32
		b.SetParallelism((callers + 1) / 2)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			l := locks[int(next.Add(1)-1)%callers]
			for pb.Next() {
				if err := l.Lock(); err != nil {
					panic(err)
				}
				if err := l.Unlock(); err != nil {
					panic(err)
				}
			}
		})
	})

	b.Run("sidecar", func(b *testing.B) {
		c, stop := benchSidecar(b, zkc.ConnectString())
		defer stop()
		b.SetParallelism((callers + 1) / 2)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				id, cancel := acquireOnce(b, c, "contended")
				if _, err := c.Release(ctx, &zklockv1.ReleaseRequest{LeaseId: id}); err != nil {
					panic(fmt.Sprint("Release: ", err))
				}
				cancel()
			}
		})
	})
}
