package sidecar

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	zklockv1 "github.com/zklock/zklock/api/zklock/v1"
	"github.com/zklock/zklock/internal/zktest"
)

// fuzzService returns a Service for validation only: it has no ZooKeeper
// session and knows no lease, so Renew and Release answer before they would
// need one.
func fuzzService(t testing.TB) *Service {
	s, err := New(nil, Config{MaxTTL: time.Minute, Logger: zktest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// FuzzRequests decodes bytes as a request the way the server does, and runs
// the request through the service's validation. kind picks the request:
// 0 Acquire, 1 Renew, 2 Release, 3 Describe.
func FuzzRequests(f *testing.F) {
	seeds := []struct {
		kind uint8
		m    proto.Message
	}{
		{0, &zklockv1.AcquireRequest{Lock: "orders/42", Mode: zklockv1.Mode_MODE_SHARED, Ttl: dur(time.Second), Wait: dur(0), Owner: "me", Detach: true}},
		{0, &zklockv1.AcquireRequest{Lock: "../etc", Ttl: &durationpb.Duration{Seconds: 1, Nanos: -1}}},
		{0, &zklockv1.AcquireRequest{Lock: "a/x0000000001", Mode: 9, Wait: dur(-time.Second)}},
		{1, &zklockv1.RenewRequest{LeaseIds: []string{"0123456789abcdef0123456789abcdef", "x"}, Ttl: dur(time.Hour)}},
		{2, &zklockv1.ReleaseRequest{LeaseId: "0123456789abcdef0123456789abcdef"}},
		{3, &zklockv1.DescribeRequest{Lock: "a//b"}},
	}
	for _, s := range seeds {
		b, err := proto.Marshal(s.m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.kind, b)
	}
	// Strings that grpc-go's own codec would refuse.
	f.Add(uint8(0), appendRawString(nil, 1, "a\xffb"))
	f.Add(uint8(0), appendRawString(appendRawString(nil, 1, "ok"), 5, "\xc3("))
	f.Add(uint8(1), appendRawString(appendRawString(nil, 1, "0123456789abcdef0123456789abcdef"), 1, "\xfe"))
	f.Add(uint8(2), appendRawString(nil, 1, strings.Repeat("\xff", 32)))
	f.Add(uint8(3), appendRawString(nil, 1, "\xed\xa0\x80"))

	s := fuzzService(f)
	codec := newRequestCodec()
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		var m proto.Message
		switch kind % 4 {
		case 0:
			m = &zklockv1.AcquireRequest{}
		case 1:
			m = &zklockv1.RenewRequest{}
		case 2:
			m = &zklockv1.ReleaseRequest{}
		default:
			m = &zklockv1.DescribeRequest{}
		}
		strict := m.ProtoReflect().New().Interface()
		strictErr := proto.Unmarshal(b, strict)
		if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, m); err != nil {
			if strictErr == nil {
				t.Fatalf("the codec refuses what proto.Unmarshal decodes: %v", err)
			}
			return // grpc-go answers for it; the service never sees it
		}
		switch {
		case strictErr == nil && !proto.Equal(strict, m):
			t.Fatalf("the codec decodes %v, proto.Unmarshal %v", m, strict)
		case strictErr != nil && !hasInvalidString(m):
			t.Fatalf("the codec decodes %v, which proto.Unmarshal refuses (%v) for no invalid UTF-8", m, strictErr)
		}

		var err error
		ids := []string{}
		switch req := m.(type) {
		case *zklockv1.AcquireRequest:
			var args acquireArgs
			if args, err = s.checkAcquire(req); err == nil {
				checkAccepted(t, s, req, args)
			}
		case *zklockv1.RenewRequest:
			ids = req.GetLeaseIds()
			var resp *zklockv1.RenewResponse
			if resp, err = s.Renew(context.Background(), req); err == nil {
				t.Fatalf("Renew renewed %v, with no lease known", resp)
			}
		case *zklockv1.ReleaseRequest:
			ids = []string{req.GetLeaseId()}
			if _, err = s.Release(context.Background(), req); err == nil {
				t.Fatal("Release succeeded, with no lease known")
			}
		case *zklockv1.DescribeRequest:
			if nameOK(req.GetLock()) {
				return // valid: Describe would ask ZooKeeper
			}
			if _, err = s.Describe(context.Background(), req); err == nil {
				t.Fatalf("Describe accepted %q", req.GetLock())
			}
		}
		if err != nil {
			checkRefusal(t, err, ids)
		}
	})
}

// FuzzAcquireFields runs Acquire's validation over arbitrary fields, a
// duration being set when its has flag is.
func FuzzAcquireFields(f *testing.F) {
	f.Add("demo", "me", int32(0), true, int64(1), int32(0), false, int64(0), int32(0))
	f.Add("orders/42", "", int32(2), false, int64(0), int32(0), true, int64(0), int32(0))
	f.Add("a/./b", "x\n", int32(3), true, int64(0), int32(0), true, int64(-1), int32(0))
	f.Add("x", strings.Repeat("o", 257), int32(1), true, int64(60), int32(1), true, int64(1), int32(-1))
	f.Add("x", "", int32(1), true, int64(315576000000), int32(0), true, int64(0), int32(1e9))
	f.Add("job-0000000001", "", int32(-1), true, int64(-1), int32(0), false, int64(0), int32(0))

	s := fuzzService(f)
	f.Fuzz(func(t *testing.T, lock, owner string, mode int32, hasTTL bool, ttlS int64, ttlN int32, hasWait bool, waitS int64, waitN int32) {
		req := &zklockv1.AcquireRequest{Lock: lock, Owner: owner, Mode: zklockv1.Mode(mode)}
		if hasTTL {
			req.Ttl = &durationpb.Duration{Seconds: ttlS, Nanos: ttlN}
		}
		if hasWait {
			req.Wait = &durationpb.Duration{Seconds: waitS, Nanos: waitN}
		}
		args, err := s.checkAcquire(req)
		if err == nil {
			checkAccepted(t, s, req, args)
			return
		}
		checkRefusal(t, err, nil)
		// The reason names a field that breaks its rule, judged apart from
		// the service's checks.
		var bad bool
		switch r := errorInfo(status.Convert(err)).GetReason(); r {
		case "INVALID_LOCK_NAME":
			bad = !nameOK(lock)
		case "INVALID_OWNER":
			bad = !ownerOK(owner)
		case "INVALID_MODE":
			bad = mode < 0 || mode > 2
		case "INVALID_TTL":
			bad = hasTTL && !ttlOK(s, req.Ttl)
		case "INVALID_WAIT":
			bad = hasWait && (req.Wait.CheckValid() != nil || req.Wait.AsDuration() < 0)
		default:
			t.Fatalf("Acquire refused with reason %s", r)
		}
		if !bad {
			t.Fatalf("refused %v with %v, but that field is fine", req, err)
		}
	})
}

// checkAccepted checks what checkAcquire accepted.
func checkAccepted(t *testing.T, s *Service, req *zklockv1.AcquireRequest, args acquireArgs) {
	t.Helper()
	if !nameOK(args.lock) || args.lock != req.GetLock() {
		t.Fatalf("accepted lock %q as %q", req.GetLock(), args.lock)
	}
	if !ownerOK(req.GetOwner()) {
		t.Fatalf("accepted owner %q", req.GetOwner())
	}
	if m := req.GetMode(); m != zklockv1.Mode_MODE_UNSPECIFIED && m != zklockv1.Mode_MODE_EXCLUSIVE && m != zklockv1.Mode_MODE_SHARED {
		t.Fatalf("accepted mode %d", m)
	}
	if args.shared != (req.GetMode() == zklockv1.Mode_MODE_SHARED) {
		t.Fatalf("mode %v gave shared %v", req.GetMode(), args.shared)
	}
	if args.ttl < MinTTL || args.ttl > s.cfg.MaxTTL || (req.GetTtl() != nil && (!ttlOK(s, req.GetTtl()) || args.ttl != req.GetTtl().AsDuration())) {
		t.Fatalf("accepted ttl %v as %v", req.GetTtl(), args.ttl)
	}
	if req.GetWait() == nil {
		if args.tryOnce || args.timed {
			t.Fatalf("no wait, but tryOnce %v timed %v", args.tryOnce, args.timed)
		}
		return
	}
	if args.wait < 0 || args.tryOnce != (args.wait == 0) || args.timed != (args.wait > 0) {
		t.Fatalf("wait %v gave %v, tryOnce %v timed %v", req.GetWait(), args.wait, args.tryOnce, args.timed)
	}
}

// ownerOK is the fuzz targets' verdict on an owner label, reached without
// checkOwner: at most 256 bytes of UTF-8 without control characters.
func ownerOK(owner string) bool {
	return len(owner) <= 256 && utf8.ValidString(owner) && !strings.ContainsFunc(owner, unicode.IsControl)
}

// ttlOK is the fuzz targets' verdict on a ttl that is set, reached without
// checkTTL: a valid Duration between MinTTL and s's maximum.
func ttlOK(s *Service, ttl *durationpb.Duration) bool {
	return ttl.CheckValid() == nil && ttl.AsDuration() >= MinTTL && ttl.AsDuration() <= s.cfg.MaxTTL
}

// checkRefusal checks the status of a refused request: a client's-fault
// code, an ErrorInfo reason, a lowercase UTF-8 message that echoes none of
// the lease ids.
func checkRefusal(t *testing.T, err error, ids []string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("refused with %v, not a status", err)
	}
	switch st.Code() {
	case codes.InvalidArgument, codes.ResourceExhausted, codes.NotFound:
	default:
		t.Fatalf("refused with %v (%q)", st.Code(), st.Message())
	}
	if info := errorInfo(st); info.GetReason() == "" || info.GetDomain() != errorDomain {
		t.Fatalf("refused with %q without an ErrorInfo reason: %v", st.Message(), info)
	}
	msg := st.Message()
	if r, _ := utf8.DecodeRuneInString(msg); !utf8.ValidString(msg) || !unicode.IsLower(r) {
		t.Fatalf("message %q is not lowercase UTF-8", msg)
	}
	for _, id := range ids {
		if checkLeaseID(id, "") == nil && strings.Contains(msg, id) {
			t.Fatalf("message %q shows the lease id", msg)
		}
	}
}

func appendRawString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}
