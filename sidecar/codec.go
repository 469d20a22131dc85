package sidecar

import (
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// requestCodec is grpc-go's proto codec, except that a zklock.v1 request
// whose string field holds invalid UTF-8 is decoded with the bytes as they
// are instead of refused. grpc-go would answer INTERNAL naming no field;
// the service's validation, which checks every string of a request,
// answers INVALID_ARGUMENT naming the field and the rule.
type requestCodec struct{ encoding.CodecV2 }

func newRequestCodec() requestCodec {
	return requestCodec{encoding.GetCodecV2(grpcproto.Name)}
}

func (c requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.CodecV2.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok || m.ProtoReflect().Descriptor().ParentFile().Package() != "zklock.v1" {
		return err
	}
	// Decoded so, a message that holds no invalid UTF-8 in the end (a
	// field set twice) is still refused as the proto codec refused it.
	if unmarshalKeepingStrings(data.Materialize(), m) != nil || !hasInvalidString(m) {
		return err
	}
	return nil
}

// unmarshalKeepingStrings is proto.Unmarshal, except that the message's own
// string fields (outside a oneof) take their bytes unchecked.
func unmarshalKeepingStrings(b []byte, m proto.Message) error {
	type str struct {
		fd protoreflect.FieldDescriptor
		v  string
	}
	var strs []str
	rest := make([]byte, 0, len(b))
	fields := m.ProtoReflect().Descriptor().Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		vn := protowire.ConsumeFieldValue(num, typ, b[n:])
		if vn < 0 {
			return protowire.ParseError(vn)
		}
		field := b[:n+vn]
		b = b[n+vn:]
		fd := fields.ByNumber(num)
		if fd == nil || fd.Kind() != protoreflect.StringKind || typ != protowire.BytesType || fd.ContainingOneof() != nil {
			rest = append(rest, field...)
			continue
		}
		v, _ := protowire.ConsumeBytes(field[n:])
		strs = append(strs, str{fd, string(v)})
	}
	if err := proto.Unmarshal(rest, m); err != nil {
		return err
	}
	r := m.ProtoReflect()
	for _, s := range strs {
		if s.fd.IsList() {
			r.Mutable(s.fd).List().Append(protoreflect.ValueOfString(s.v))
		} else {
			r.Set(s.fd, protoreflect.ValueOfString(s.v))
		}
	}
	return nil
}

// hasInvalidString reports whether one of m's own string fields holds
// invalid UTF-8.
func hasInvalidString(m proto.Message) bool {
	found := false
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Kind() != protoreflect.StringKind:
		case fd.IsList():
			for i := range v.List().Len() {
				found = found || !utf8.ValidString(v.List().Get(i).String())
			}
		default:
			found = !utf8.ValidString(v.String())
		}
		return !found
	})
	return found
}
