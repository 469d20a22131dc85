package io.zklock.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * LockService offers fair, fenced distributed locks backed by ZooKeeper.
 * Each lock is a queue of ZooKeeper nodes: callers are granted the lock in the
 * order they asked for it. A granted lock is a lease. By default the Acquire
 * stream is the lease: it stays held while the stream is open and is released
 * at once when the stream ends. A detached lease outlives its stream and lives
 * by its TTL, extended by Renew.
 * Holding a lease is not proof that no one else holds the lock: a paused or
 * partitioned holder can lose it without noticing in time. Pass the fencing
 * token with every write to the protected resource, and have the resource
 * reject tokens lower than the highest it has seen.
 * </pre>
 */
@javax.annotation.Generated(
    value = "by gRPC proto compiler",
    comments = "Source: zklock/v1/lock.proto")
@io.grpc.stub.annotations.GrpcGenerated
public final class LockServiceGrpc {

  private LockServiceGrpc() {}

  public static final String SERVICE_NAME = "zklock.v1.LockService";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<io.zklock.v1.AcquireRequest,
      io.zklock.v1.AcquireResponse> getAcquireMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Acquire",
      requestType = io.zklock.v1.AcquireRequest.class,
      responseType = io.zklock.v1.AcquireResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
  public static io.grpc.MethodDescriptor<io.zklock.v1.AcquireRequest,
      io.zklock.v1.AcquireResponse> getAcquireMethod() {
    io.grpc.MethodDescriptor<io.zklock.v1.AcquireRequest, io.zklock.v1.AcquireResponse> getAcquireMethod;
    if ((getAcquireMethod = LockServiceGrpc.getAcquireMethod) == null) {
      synchronized (LockServiceGrpc.class) {
        if ((getAcquireMethod = LockServiceGrpc.getAcquireMethod) == null) {
          LockServiceGrpc.getAcquireMethod = getAcquireMethod =
              io.grpc.MethodDescriptor.<io.zklock.v1.AcquireRequest, io.zklock.v1.AcquireResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Acquire"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.zklock.v1.AcquireRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.zklock.v1.AcquireResponse.getDefaultInstance()))
              .setSchemaDescriptor(new LockServiceMethodDescriptorSupplier("Acquire"))
              .build();
        }
      }
    }
    return getAcquireMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.zklock.v1.RenewRequest,
      io.zklock.v1.RenewResponse> getRenewMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Renew",
      requestType = io.zklock.v1.RenewRequest.class,
      responseType = io.zklock.v1.RenewResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.zklock.v1.RenewRequest,
      io.zklock.v1.RenewResponse> getRenewMethod() {
    io.grpc.MethodDescriptor<io.zklock.v1.RenewRequest, io.zklock.v1.RenewResponse> getRenewMethod;
    if ((getRenewMethod = LockServiceGrpc.getRenewMethod) == null) {
      synchronized (LockServiceGrpc.class) {
        if ((getRenewMethod = LockServiceGrpc.getRenewMethod) == null) {
          LockServiceGrpc.getRenewMethod = getRenewMethod =
              io.grpc.MethodDescriptor.<io.zklock.v1.RenewRequest, io.zklock.v1.RenewResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Renew"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.zklock.v1.RenewRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.zklock.v1.RenewResponse.getDefaultInstance()))
              .setSchemaDescriptor(new LockServiceMethodDescriptorSupplier("Renew"))
              .build();
        }
      }
    }
    return getRenewMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.zklock.v1.ReleaseRequest,
      io.zklock.v1.ReleaseResponse> getReleaseMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Release",
      requestType = io.zklock.v1.ReleaseRequest.class,
      responseType = io.zklock.v1.ReleaseResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.zklock.v1.ReleaseRequest,
      io.zklock.v1.ReleaseResponse> getReleaseMethod() {
    io.grpc.MethodDescriptor<io.zklock.v1.ReleaseRequest, io.zklock.v1.ReleaseResponse> getReleaseMethod;
    if ((getReleaseMethod = LockServiceGrpc.getReleaseMethod) == null) {
      synchronized (LockServiceGrpc.class) {
        if ((getReleaseMethod = LockServiceGrpc.getReleaseMethod) == null) {
          LockServiceGrpc.getReleaseMethod = getReleaseMethod =
              io.grpc.MethodDescriptor.<io.zklock.v1.ReleaseRequest, io.zklock.v1.ReleaseResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Release"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.zklock.v1.ReleaseRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.zklock.v1.ReleaseResponse.getDefaultInstance()))
              .setSchemaDescriptor(new LockServiceMethodDescriptorSupplier("Release"))
              .build();
        }
      }
    }
    return getReleaseMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.zklock.v1.DescribeRequest,
      io.zklock.v1.DescribeResponse> getDescribeMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Describe",
      requestType = io.zklock.v1.DescribeRequest.class,
      responseType = io.zklock.v1.DescribeResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<io.zklock.v1.DescribeRequest,
      io.zklock.v1.DescribeResponse> getDescribeMethod() {
    io.grpc.MethodDescriptor<io.zklock.v1.DescribeRequest, io.zklock.v1.DescribeResponse> getDescribeMethod;
    if ((getDescribeMethod = LockServiceGrpc.getDescribeMethod) == null) {
      synchronized (LockServiceGrpc.class) {
        if ((getDescribeMethod = LockServiceGrpc.getDescribeMethod) == null) {
          LockServiceGrpc.getDescribeMethod = getDescribeMethod =
              io.grpc.MethodDescriptor.<io.zklock.v1.DescribeRequest, io.zklock.v1.DescribeResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Describe"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.zklock.v1.DescribeRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.zklock.v1.DescribeResponse.getDefaultInstance()))
              .setSchemaDescriptor(new LockServiceMethodDescriptorSupplier("Describe"))
              .build();
        }
      }
    }
    return getDescribeMethod;
  }

  private static volatile io.grpc.MethodDescriptor<io.zklock.v1.ObserveRequest,
      io.zklock.v1.ObserveResponse> getObserveMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "Observe",
      requestType = io.zklock.v1.ObserveRequest.class,
      responseType = io.zklock.v1.ObserveResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
  public static io.grpc.MethodDescriptor<io.zklock.v1.ObserveRequest,
      io.zklock.v1.ObserveResponse> getObserveMethod() {
    io.grpc.MethodDescriptor<io.zklock.v1.ObserveRequest, io.zklock.v1.ObserveResponse> getObserveMethod;
    if ((getObserveMethod = LockServiceGrpc.getObserveMethod) == null) {
      synchronized (LockServiceGrpc.class) {
        if ((getObserveMethod = LockServiceGrpc.getObserveMethod) == null) {
          LockServiceGrpc.getObserveMethod = getObserveMethod =
              io.grpc.MethodDescriptor.<io.zklock.v1.ObserveRequest, io.zklock.v1.ObserveResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "Observe"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.zklock.v1.ObserveRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  io.zklock.v1.ObserveResponse.getDefaultInstance()))
              .setSchemaDescriptor(new LockServiceMethodDescriptorSupplier("Observe"))
              .build();
        }
      }
    }
    return getObserveMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static LockServiceStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<LockServiceStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<LockServiceStub>() {
        @java.lang.Override
        public LockServiceStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new LockServiceStub(channel, callOptions);
        }
      };
    return LockServiceStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static LockServiceBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<LockServiceBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<LockServiceBlockingStub>() {
        @java.lang.Override
        public LockServiceBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new LockServiceBlockingStub(channel, callOptions);
        }
      };
    return LockServiceBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static LockServiceFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<LockServiceFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<LockServiceFutureStub>() {
        @java.lang.Override
        public LockServiceFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new LockServiceFutureStub(channel, callOptions);
        }
      };
    return LockServiceFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * LockService offers fair, fenced distributed locks backed by ZooKeeper.
   * Each lock is a queue of ZooKeeper nodes: callers are granted the lock in the
   * order they asked for it. A granted lock is a lease. By default the Acquire
   * stream is the lease: it stays held while the stream is open and is released
   * at once when the stream ends. A detached lease outlives its stream and lives
   * by its TTL, extended by Renew.
   * Holding a lease is not proof that no one else holds the lock: a paused or
   * partitioned holder can lose it without noticing in time. Pass the fencing
   * token with every write to the protected resource, and have the resource
   * reject tokens lower than the highest it has seen.
   * </pre>
   */
  public static abstract class LockServiceImplBase implements io.grpc.BindableService {

    /**
     * <pre>
     * Acquires a lock and streams the events of the resulting lease.
     * The stream sends Queued (when the caller joins the queue, and again
     * within about a second of each change of its position), then Granted,
     * then any number of Suspended and Resumed, and ends with Released or Lost.
     * Cancelling the call before the grant removes the caller from the queue
     * at once; ending it after the grant releases a lease that is not
     * detached.
     * A re-entry (`reenter`) sends no Queued: Granted comes at once.
     * Errors: INVALID_ARGUMENT for a bad lock name, ttl, wait, owner, permits
     * or reenter, or a reenter of a lease of another lock; NOT_FOUND for a
     * reenter of a lease the sidecar does not know (or that was released);
     * ABORTED for a reenter of a lease that was lost; FAILED_PRECONDITION for
     * permits that differ from those of the lock's present contenders, and for
     * an exclusive reenter of a shared lease; DEADLINE_EXCEEDED when `wait`
     * ran out before the grant; UNAVAILABLE while the sidecar has no ZooKeeper
     * session or is shutting down; RESOURCE_EXHAUSTED past a configured limit.
     * </pre>
     */
    public void acquire(io.zklock.v1.AcquireRequest request,
        io.grpc.stub.StreamObserver<io.zklock.v1.AcquireResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getAcquireMethod(), responseObserver);
    }

    /**
     * <pre>
     * Renews detached leases, extending each by its TTL (or the given ttl).
     * Errors: NOT_FOUND for a lease the sidecar does not know; ABORTED for a
     * lease that was lost (the status details carry an ErrorInfo with the
     * reason and the fencing token); UNAVAILABLE while the ZooKeeper connection
     * is suspended: retry, the lease may still be held.
     * </pre>
     */
    public void renew(io.zklock.v1.RenewRequest request,
        io.grpc.stub.StreamObserver<io.zklock.v1.RenewResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getRenewMethod(), responseObserver);
    }

    /**
     * <pre>
     * Releases a lease and answers once ZooKeeper has deleted its node.
     * Releasing a lease twice succeeds. Errors: NOT_FOUND for a lease the
     * sidecar does not know; ABORTED for a lease that was lost before this
     * call; UNAVAILABLE (RELEASE_UNCONFIRMED) if ZooKeeper has not confirmed
     * the delete shortly before the call's deadline (a fifth of the time
     * left, at most 1 s): the sidecar keeps trying; retry.
     * </pre>
     */
    public void release(io.zklock.v1.ReleaseRequest request,
        io.grpc.stub.StreamObserver<io.zklock.v1.ReleaseResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getReleaseMethod(), responseObserver);
    }

    /**
     * <pre>
     * Describes a lock as ZooKeeper holds it: its holders and its waiters,
     * from every sidecar and every compatible client.
     * </pre>
     */
    public void describe(io.zklock.v1.DescribeRequest request,
        io.grpc.stub.StreamObserver<io.zklock.v1.DescribeResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getDescribeMethod(), responseObserver);
    }

    /**
     * <pre>
     * Observes who holds a lock: the first message is the present state, then
     * one message each time the set of holders changes, until the call is
     * cancelled. It sees holders of every kind of client on the lock's path
     * (zklock sidecars, Curator, Kazoo). Changes that come closer together
     * than a ZooKeeper round trip may be reported as one. The sidecar keeps
     * one ZooKeeper watch per observed lock, shared by its local observers.
     * Leader election is Acquire (campaign: the owner label carries what the
     * followers need, such as the leader's address), Observe (follow the
     * leader: the first holder) and Release or the stream's end (resign).
     * Errors: INVALID_ARGUMENT for a bad lock name; UNAVAILABLE while the
     * sidecar has no ZooKeeper session (also mid-stream, when it loses it:
     * observe again), or is shutting down; RESOURCE_EXHAUSTED past a
     * configured limit.
     * </pre>
     */
    public void observe(io.zklock.v1.ObserveRequest request,
        io.grpc.stub.StreamObserver<io.zklock.v1.ObserveResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getObserveMethod(), responseObserver);
    }

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
          .addMethod(
            getAcquireMethod(),
            io.grpc.stub.ServerCalls.asyncServerStreamingCall(
              new MethodHandlers<
                io.zklock.v1.AcquireRequest,
                io.zklock.v1.AcquireResponse>(
                  this, METHODID_ACQUIRE)))
          .addMethod(
            getRenewMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                io.zklock.v1.RenewRequest,
                io.zklock.v1.RenewResponse>(
                  this, METHODID_RENEW)))
          .addMethod(
            getReleaseMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                io.zklock.v1.ReleaseRequest,
                io.zklock.v1.ReleaseResponse>(
                  this, METHODID_RELEASE)))
          .addMethod(
            getDescribeMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                io.zklock.v1.DescribeRequest,
                io.zklock.v1.DescribeResponse>(
                  this, METHODID_DESCRIBE)))
          .addMethod(
            getObserveMethod(),
            io.grpc.stub.ServerCalls.asyncServerStreamingCall(
              new MethodHandlers<
                io.zklock.v1.ObserveRequest,
                io.zklock.v1.ObserveResponse>(
                  this, METHODID_OBSERVE)))
          .build();
    }
  }

  /**
   * <pre>
   * LockService offers fair, fenced distributed locks backed by ZooKeeper.
   * Each lock is a queue of ZooKeeper nodes: callers are granted the lock in the
   * order they asked for it. A granted lock is a lease. By default the Acquire
   * stream is the lease: it stays held while the stream is open and is released
   * at once when the stream ends. A detached lease outlives its stream and lives
   * by its TTL, extended by Renew.
   * Holding a lease is not proof that no one else holds the lock: a paused or
   * partitioned holder can lose it without noticing in time. Pass the fencing
   * token with every write to the protected resource, and have the resource
   * reject tokens lower than the highest it has seen.
   * </pre>
   */
  public static final class LockServiceStub extends io.grpc.stub.AbstractAsyncStub<LockServiceStub> {
    private LockServiceStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected LockServiceStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new LockServiceStub(channel, callOptions);
    }

    /**
     * <pre>
     * Acquires a lock and streams the events of the resulting lease.
     * The stream sends Queued (when the caller joins the queue, and again
     * within about a second of each change of its position), then Granted,
     * then any number of Suspended and Resumed, and ends with Released or Lost.
     * Cancelling the call before the grant removes the caller from the queue
     * at once; ending it after the grant releases a lease that is not
     * detached.
     * A re-entry (`reenter`) sends no Queued: Granted comes at once.
     * Errors: INVALID_ARGUMENT for a bad lock name, ttl, wait, owner, permits
     * or reenter, or a reenter of a lease of another lock; NOT_FOUND for a
     * reenter of a lease the sidecar does not know (or that was released);
     * ABORTED for a reenter of a lease that was lost; FAILED_PRECONDITION for
     * permits that differ from those of the lock's present contenders, and for
     * an exclusive reenter of a shared lease; DEADLINE_EXCEEDED when `wait`
     * ran out before the grant; UNAVAILABLE while the sidecar has no ZooKeeper
     * session or is shutting down; RESOURCE_EXHAUSTED past a configured limit.
     * </pre>
     */
    public void acquire(io.zklock.v1.AcquireRequest request,
        io.grpc.stub.StreamObserver<io.zklock.v1.AcquireResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncServerStreamingCall(
          getChannel().newCall(getAcquireMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Renews detached leases, extending each by its TTL (or the given ttl).
     * Errors: NOT_FOUND for a lease the sidecar does not know; ABORTED for a
     * lease that was lost (the status details carry an ErrorInfo with the
     * reason and the fencing token); UNAVAILABLE while the ZooKeeper connection
     * is suspended: retry, the lease may still be held.
     * </pre>
     */
    public void renew(io.zklock.v1.RenewRequest request,
        io.grpc.stub.StreamObserver<io.zklock.v1.RenewResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getRenewMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Releases a lease and answers once ZooKeeper has deleted its node.
     * Releasing a lease twice succeeds. Errors: NOT_FOUND for a lease the
     * sidecar does not know; ABORTED for a lease that was lost before this
     * call; UNAVAILABLE (RELEASE_UNCONFIRMED) if ZooKeeper has not confirmed
     * the delete shortly before the call's deadline (a fifth of the time
     * left, at most 1 s): the sidecar keeps trying; retry.
     * </pre>
     */
    public void release(io.zklock.v1.ReleaseRequest request,
        io.grpc.stub.StreamObserver<io.zklock.v1.ReleaseResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getReleaseMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Describes a lock as ZooKeeper holds it: its holders and its waiters,
     * from every sidecar and every compatible client.
     * </pre>
     */
    public void describe(io.zklock.v1.DescribeRequest request,
        io.grpc.stub.StreamObserver<io.zklock.v1.DescribeResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getDescribeMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Observes who holds a lock: the first message is the present state, then
     * one message each time the set of holders changes, until the call is
     * cancelled. It sees holders of every kind of client on the lock's path
     * (zklock sidecars, Curator, Kazoo). Changes that come closer together
     * than a ZooKeeper round trip may be reported as one. The sidecar keeps
     * one ZooKeeper watch per observed lock, shared by its local observers.
     * Leader election is Acquire (campaign: the owner label carries what the
     * followers need, such as the leader's address), Observe (follow the
     * leader: the first holder) and Release or the stream's end (resign).
     * Errors: INVALID_ARGUMENT for a bad lock name; UNAVAILABLE while the
     * sidecar has no ZooKeeper session (also mid-stream, when it loses it:
     * observe again), or is shutting down; RESOURCE_EXHAUSTED past a
     * configured limit.
     * </pre>
     */
    public void observe(io.zklock.v1.ObserveRequest request,
        io.grpc.stub.StreamObserver<io.zklock.v1.ObserveResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncServerStreamingCall(
          getChannel().newCall(getObserveMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * <pre>
   * LockService offers fair, fenced distributed locks backed by ZooKeeper.
   * Each lock is a queue of ZooKeeper nodes: callers are granted the lock in the
   * order they asked for it. A granted lock is a lease. By default the Acquire
   * stream is the lease: it stays held while the stream is open and is released
   * at once when the stream ends. A detached lease outlives its stream and lives
   * by its TTL, extended by Renew.
   * Holding a lease is not proof that no one else holds the lock: a paused or
   * partitioned holder can lose it without noticing in time. Pass the fencing
   * token with every write to the protected resource, and have the resource
   * reject tokens lower than the highest it has seen.
   * </pre>
   */
  public static final class LockServiceBlockingStub extends io.grpc.stub.AbstractBlockingStub<LockServiceBlockingStub> {
    private LockServiceBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected LockServiceBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new LockServiceBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * Acquires a lock and streams the events of the resulting lease.
     * The stream sends Queued (when the caller joins the queue, and again
     * within about a second of each change of its position), then Granted,
     * then any number of Suspended and Resumed, and ends with Released or Lost.
     * Cancelling the call before the grant removes the caller from the queue
     * at once; ending it after the grant releases a lease that is not
     * detached.
     * A re-entry (`reenter`) sends no Queued: Granted comes at once.
     * Errors: INVALID_ARGUMENT for a bad lock name, ttl, wait, owner, permits
     * or reenter, or a reenter of a lease of another lock; NOT_FOUND for a
     * reenter of a lease the sidecar does not know (or that was released);
     * ABORTED for a reenter of a lease that was lost; FAILED_PRECONDITION for
     * permits that differ from those of the lock's present contenders, and for
     * an exclusive reenter of a shared lease; DEADLINE_EXCEEDED when `wait`
     * ran out before the grant; UNAVAILABLE while the sidecar has no ZooKeeper
     * session or is shutting down; RESOURCE_EXHAUSTED past a configured limit.
     * </pre>
     */
    public java.util.Iterator<io.zklock.v1.AcquireResponse> acquire(
        io.zklock.v1.AcquireRequest request) {
      return io.grpc.stub.ClientCalls.blockingServerStreamingCall(
          getChannel(), getAcquireMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Renews detached leases, extending each by its TTL (or the given ttl).
     * Errors: NOT_FOUND for a lease the sidecar does not know; ABORTED for a
     * lease that was lost (the status details carry an ErrorInfo with the
     * reason and the fencing token); UNAVAILABLE while the ZooKeeper connection
     * is suspended: retry, the lease may still be held.
     * </pre>
     */
    public io.zklock.v1.RenewResponse renew(io.zklock.v1.RenewRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getRenewMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Releases a lease and answers once ZooKeeper has deleted its node.
     * Releasing a lease twice succeeds. Errors: NOT_FOUND for a lease the
     * sidecar does not know; ABORTED for a lease that was lost before this
     * call; UNAVAILABLE (RELEASE_UNCONFIRMED) if ZooKeeper has not confirmed
     * the delete shortly before the call's deadline (a fifth of the time
     * left, at most 1 s): the sidecar keeps trying; retry.
     * </pre>
     */
    public io.zklock.v1.ReleaseResponse release(io.zklock.v1.ReleaseRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getReleaseMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Describes a lock as ZooKeeper holds it: its holders and its waiters,
     * from every sidecar and every compatible client.
     * </pre>
     */
    public io.zklock.v1.DescribeResponse describe(io.zklock.v1.DescribeRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getDescribeMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Observes who holds a lock: the first message is the present state, then
     * one message each time the set of holders changes, until the call is
     * cancelled. It sees holders of every kind of client on the lock's path
     * (zklock sidecars, Curator, Kazoo). Changes that come closer together
     * than a ZooKeeper round trip may be reported as one. The sidecar keeps
     * one ZooKeeper watch per observed lock, shared by its local observers.
     * Leader election is Acquire (campaign: the owner label carries what the
     * followers need, such as the leader's address), Observe (follow the
     * leader: the first holder) and Release or the stream's end (resign).
     * Errors: INVALID_ARGUMENT for a bad lock name; UNAVAILABLE while the
     * sidecar has no ZooKeeper session (also mid-stream, when it loses it:
     * observe again), or is shutting down; RESOURCE_EXHAUSTED past a
     * configured limit.
     * </pre>
     */
    public java.util.Iterator<io.zklock.v1.ObserveResponse> observe(
        io.zklock.v1.ObserveRequest request) {
      return io.grpc.stub.ClientCalls.blockingServerStreamingCall(
          getChannel(), getObserveMethod(), getCallOptions(), request);
    }
  }

  /**
   * <pre>
   * LockService offers fair, fenced distributed locks backed by ZooKeeper.
   * Each lock is a queue of ZooKeeper nodes: callers are granted the lock in the
   * order they asked for it. A granted lock is a lease. By default the Acquire
   * stream is the lease: it stays held while the stream is open and is released
   * at once when the stream ends. A detached lease outlives its stream and lives
   * by its TTL, extended by Renew.
   * Holding a lease is not proof that no one else holds the lock: a paused or
   * partitioned holder can lose it without noticing in time. Pass the fencing
   * token with every write to the protected resource, and have the resource
   * reject tokens lower than the highest it has seen.
   * </pre>
   */
  public static final class LockServiceFutureStub extends io.grpc.stub.AbstractFutureStub<LockServiceFutureStub> {
    private LockServiceFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected LockServiceFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new LockServiceFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * Renews detached leases, extending each by its TTL (or the given ttl).
     * Errors: NOT_FOUND for a lease the sidecar does not know; ABORTED for a
     * lease that was lost (the status details carry an ErrorInfo with the
     * reason and the fencing token); UNAVAILABLE while the ZooKeeper connection
     * is suspended: retry, the lease may still be held.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.zklock.v1.RenewResponse> renew(
        io.zklock.v1.RenewRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getRenewMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Releases a lease and answers once ZooKeeper has deleted its node.
     * Releasing a lease twice succeeds. Errors: NOT_FOUND for a lease the
     * sidecar does not know; ABORTED for a lease that was lost before this
     * call; UNAVAILABLE (RELEASE_UNCONFIRMED) if ZooKeeper has not confirmed
     * the delete shortly before the call's deadline (a fifth of the time
     * left, at most 1 s): the sidecar keeps trying; retry.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.zklock.v1.ReleaseResponse> release(
        io.zklock.v1.ReleaseRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getReleaseMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Describes a lock as ZooKeeper holds it: its holders and its waiters,
     * from every sidecar and every compatible client.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<io.zklock.v1.DescribeResponse> describe(
        io.zklock.v1.DescribeRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getDescribeMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_ACQUIRE = 0;
  private static final int METHODID_RENEW = 1;
  private static final int METHODID_RELEASE = 2;
  private static final int METHODID_DESCRIBE = 3;
  private static final int METHODID_OBSERVE = 4;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final LockServiceImplBase serviceImpl;
    private final int methodId;

    MethodHandlers(LockServiceImplBase serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_ACQUIRE:
          serviceImpl.acquire((io.zklock.v1.AcquireRequest) request,
              (io.grpc.stub.StreamObserver<io.zklock.v1.AcquireResponse>) responseObserver);
          break;
        case METHODID_RENEW:
          serviceImpl.renew((io.zklock.v1.RenewRequest) request,
              (io.grpc.stub.StreamObserver<io.zklock.v1.RenewResponse>) responseObserver);
          break;
        case METHODID_RELEASE:
          serviceImpl.release((io.zklock.v1.ReleaseRequest) request,
              (io.grpc.stub.StreamObserver<io.zklock.v1.ReleaseResponse>) responseObserver);
          break;
        case METHODID_DESCRIBE:
          serviceImpl.describe((io.zklock.v1.DescribeRequest) request,
              (io.grpc.stub.StreamObserver<io.zklock.v1.DescribeResponse>) responseObserver);
          break;
        case METHODID_OBSERVE:
          serviceImpl.observe((io.zklock.v1.ObserveRequest) request,
              (io.grpc.stub.StreamObserver<io.zklock.v1.ObserveResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        default:
          throw new AssertionError();
      }
    }
  }

  private static abstract class LockServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    LockServiceBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return io.zklock.v1.LockProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("LockService");
    }
  }

  private static final class LockServiceFileDescriptorSupplier
      extends LockServiceBaseDescriptorSupplier {
    LockServiceFileDescriptorSupplier() {}
  }

  private static final class LockServiceMethodDescriptorSupplier
      extends LockServiceBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final String methodName;

    LockServiceMethodDescriptorSupplier(String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (LockServiceGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new LockServiceFileDescriptorSupplier())
              .addMethod(getAcquireMethod())
              .addMethod(getRenewMethod())
              .addMethod(getReleaseMethod())
              .addMethod(getDescribeMethod())
              .addMethod(getObserveMethod())
              .build();
        }
      }
    }
    return result;
  }
}
