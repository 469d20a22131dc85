package zklock_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/zklock/zklock/clients/go/zklock"
)

func Example() {
	conn, err := zklock.Dial("127.0.0.1:7878")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	c := zklock.New(conn)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lease, err := c.Lock(ctx, "orders/42", zklock.Owner("billing"))
	if err != nil {
		log.Fatal(err)
	}
	defer lease.Release(context.Background())

	select {
	case <-lease.Lost():
		log.Print("lost the lock: ", lease.Err())
		return
	default:
	}
	// Pass the token with every write to the protected resource.
	fmt.Println("writing with fencing token", lease.Token())
}

// A semaphore: at most 3 holders of "licences" at once, each with a
// fencing token of its own. Every contender asks for the same Permits.
func ExamplePermits() {
	conn, err := zklock.Dial("127.0.0.1:7878")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	c := zklock.New(conn)

	lease, err := c.Lock(context.Background(), "licences", zklock.Permits(3))
	if err != nil {
		log.Fatal(err)
	}
	defer lease.Release(context.Background())
	fmt.Println("one of 3 licences, token", lease.Token())
}

// Code that holds a lock takes it again instead of waiting for itself.
func ExampleLease_Reenter() {
	conn, err := zklock.Dial("127.0.0.1:7878")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	c := zklock.New(conn)

	ctx := context.Background()
	outer, err := c.Lock(ctx, "orders/42")
	if err != nil {
		log.Fatal(err)
	}
	defer outer.Release(ctx)
	inner, err := outer.Reenter(ctx) // granted at once, the same token
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(inner.Token() == outer.Token())
	inner.Release(ctx) // outer still holds the lock
}

// Leader election: every instance campaigns with the address followers
// need; all of them follow who leads.
func ExampleClient_Campaign() {
	conn, err := zklock.Dial("127.0.0.1:7878")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	c := zklock.New(conn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	go func() {
		err := c.ObserveLeader(ctx, "billing/leader", func(leader zklock.Holder, ok bool) error {
			if ok {
				log.Printf("leader: %s (token %d)", leader.Owner, leader.Token)
			} else {
				log.Print("no leader")
			}
			return nil
		})
		log.Print("stopped following the leader: ", err)
	}()

	lease, err := c.Campaign(ctx, "billing/leader", "10.0.0.7:8080") // waits until elected
	if err != nil {
		log.Fatal(err)
	}
	select {
	case <-lease.Lost(): // no longer the leader
	case <-time.After(time.Minute): // lead for a while
	}
	lease.Release(context.Background()) // resign
}
