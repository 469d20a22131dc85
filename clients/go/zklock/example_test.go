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
