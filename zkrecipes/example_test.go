package zkrecipes_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/zklock/zklock/zkrecipes"
)

// writeFenced stands for a write to a resource that refuses tokens lower
// than the highest it has seen.
func writeFenced(token int64, what string) error {
	fmt.Println("write", what, "with token", token)
	return nil
}

func ExampleSession_Lock() {
	s, err := zkrecipes.Connect(zkrecipes.Config{
		Servers:        []string{"127.0.0.1:2181"},
		SessionTimeout: 10 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Lock fails with ErrNoSession until the session is usable.
	for {
		if st, changed := s.State(); st.Epoch == nil {
			<-changed
			continue
		}
		break
	}
	h, err := s.Lock(ctx, "/zklock/orders/42", zkrecipes.LockOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Release(context.Background())

	select {
	case <-h.Done():
		log.Print("lock lost: stop")
		return
	default:
	}
	if err := writeFenced(h.Token(), "order 42"); err != nil {
		log.Print(err)
	}
}
