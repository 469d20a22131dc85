{{/*
Named templates for an application chart that runs zklockd beside its app.
Each takes the zklock chart's context: `.` inside this chart, and
`.Subcharts.zklock` in an app chart that depends on it (so that .Values are
zklock's values and .Chart.AppVersion is zklock's). Each renders YAML at
indentation 0: pipe it through nindent. README.md shows the whole pod spec.

  zklock.sidecar           the zklockd container, as a list item (for
                           containers:, or initContainers: with nativeSidecar)
  zklock.volumes           the volumes it needs, as list items (may be empty)
  zklock.appVolumeMounts   mounts for the app container (the socket's
                           directory in unix mode; may be empty)
  zklock.appEnv            ZKLOCK_ADDR for the app container, as a list item
  zklock.address           where a process in the pod dials zklockd
  zklock.httpAddress       where it reaches the HTTP/JSON listener
                           (http.enabled)
  zklock.terminationGracePeriodSeconds
                           the least grace period the pod needs for zklockd
*/}}

{{- define "zklock.sidecar" -}}
{{- include "zklock.validate" . -}}
{{- $v := .Values -}}
- name: {{ $v.name }}
  image: {{ include "zklock.image" . | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if $v.nativeSidecar }}
  restartPolicy: Always
  {{- end }}
  args:
    - {{ printf "--zk=%s" $v.zookeeper.connect | quote }}
    - {{ printf "--listen=%s" (include "zklock.listen" .) | quote }}
    {{- if eq $v.listen.mode "unix" }}
    - {{ printf "--socket-mode=%s" $v.listen.socketMode | quote }}
    {{- end }}
    {{- if $v.http.enabled }}
    - {{ printf "--http-listen=%s" (include "zklock.httpListen" .) | quote }}
    {{- end }}
    - {{ printf "--root=%s" $v.zookeeper.root | quote }}
    - {{ printf "--session-timeout=%s" $v.zookeeper.sessionTimeout | quote }}
    - {{ printf "--default-ttl=%s" $v.defaultTTL | quote }}
    - {{ printf "--max-ttl=%s" $v.maxTTL | quote }}
    - {{ printf "--max-waiters-per-lock=%d" (int $v.limits.maxWaitersPerLock) | quote }}
    - {{ printf "--max-leases=%d" (int $v.limits.maxLeases) | quote }}
    - {{ printf "--max-observers=%d" (int $v.limits.maxObservers) | quote }}
    - {{ printf "--max-message-bytes=%d" (int $v.limits.maxMessageBytes) | quote }}
    - {{ printf "--node-layout=%s" $v.nodeLayout | quote }}
    - {{ printf "--shutdown-timeout=%s" $v.shutdownTimeout | quote }}
    - {{ printf "--log-format=%s" $v.log.format | quote }}
    - {{ printf "--log-level=%s" $v.log.level | quote }}
    {{- if $v.metrics.enabled }}
    - {{ printf "--metrics-listen=:%d" (int $v.metrics.port) | quote }}
    {{- end }}
    {{- if eq $v.probes.type "grpc" }}
    - {{ printf "--health-listen=0.0.0.0:%d" (int $v.health.port) | quote }}
    {{- end }}
    {{- if $v.zookeeper.auth.existingSecret }}
    - "--zk-auth-file=/etc/zklock/zk-auth/credentials"
    {{- end }}
    {{- if $v.tls.enabled }}
    - "--tls-cert=/etc/zklock/tls/tls.crt"
    - "--tls-key=/etc/zklock/tls/tls.key"
    {{- if $v.tls.clientCA.enabled }}
    - "--tls-client-ca=/etc/zklock/tls/ca.crt"
    {{- end }}
    {{- end }}
    {{- range $v.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  {{- with $v.extraEnv }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- $grpcPort := and (eq $v.listen.mode "tcp") (not (include "zklock.loopback" .)) }}
  {{- $httpPort := and $v.http.enabled $grpcPort }}
  {{- $healthPort := eq $v.probes.type "grpc" }}
  {{- if or $grpcPort $healthPort $v.metrics.enabled }}
  ports:
    {{- if $grpcPort }}
    - name: grpc
      containerPort: {{ $v.listen.port }}
      protocol: TCP
    {{- end }}
    {{- if $httpPort }}
    - name: http
      containerPort: {{ $v.http.port }}
      protocol: TCP
    {{- end }}
    {{- if $healthPort }}
    - name: health
      containerPort: {{ $v.health.port }}
      protocol: TCP
    {{- end }}
    {{- if $v.metrics.enabled }}
    - name: metrics
      containerPort: {{ $v.metrics.port }}
      protocol: TCP
    {{- end }}
  {{- end }}
  {{- if ne $v.probes.type "none" }}
  {{- with $v.probes.liveness }}
  {{- if .enabled }}
  livenessProbe:
    {{- include "zklock.probeHandler" $ | nindent 4 }}
    {{- include "zklock.probeTiming" . | nindent 4 }}
  {{- end }}
  {{- end }}
  {{- with $v.probes.readiness }}
  {{- if .enabled }}
  readinessProbe:
    {{- include "zklock.probeHandler" $ | nindent 4 }}
    {{- include "zklock.probeTiming" . | nindent 4 }}
  {{- end }}
  {{- end }}
  {{- end }}
  {{- if gt (int $v.preStopSleepSeconds) 0 }}
  lifecycle:
    preStop:
      sleep:
        seconds: {{ int $v.preStopSleepSeconds }}
  {{- end }}
  {{- with $v.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- $mounts := include "zklock.sidecarVolumeMounts" . }}
  {{- if $mounts }}
  volumeMounts:
    {{- $mounts | nindent 4 }}
  {{- end }}
{{- end }}

{{- define "zklock.volumes" -}}
{{- include "zklock.volumes.items" . | trim -}}
{{- end }}

{{- define "zklock.volumes.items" -}}
{{- $v := .Values -}}
{{- if eq $v.listen.mode "unix" }}
- name: zklock-socket
  emptyDir: {}
{{- end }}
{{- if $v.zookeeper.auth.existingSecret }}
- name: zklock-zk-auth
  secret:
    secretName: {{ $v.zookeeper.auth.existingSecret }}
    defaultMode: 0444
    items:
      - key: {{ $v.zookeeper.auth.key }}
        path: credentials
{{- end }}
{{- if $v.tls.enabled }}
- name: zklock-tls
  secret:
    secretName: {{ $v.tls.secretName }}
    defaultMode: 0444
    items:
      - key: {{ $v.tls.certKey }}
        path: tls.crt
      - key: {{ $v.tls.keyKey }}
        path: tls.key
      {{- if $v.tls.clientCA.enabled }}
      - key: {{ $v.tls.clientCA.key }}
        path: ca.crt
      {{- end }}
{{- end }}
{{- end }}

{{- define "zklock.sidecarVolumeMounts" -}}
{{- include "zklock.sidecarVolumeMounts.items" . | trim -}}
{{- end }}

{{- define "zklock.sidecarVolumeMounts.items" -}}
{{- $v := .Values -}}
{{- if eq $v.listen.mode "unix" }}
- name: zklock-socket
  mountPath: {{ $v.listen.socketDir }}
{{- end }}
{{- if $v.zookeeper.auth.existingSecret }}
- name: zklock-zk-auth
  mountPath: /etc/zklock/zk-auth
  readOnly: true
{{- end }}
{{- if $v.tls.enabled }}
- name: zklock-tls
  mountPath: /etc/zklock/tls
  readOnly: true
{{- end }}
{{- end }}

{{- define "zklock.appVolumeMounts" -}}
{{- include "zklock.appVolumeMounts.items" . | trim -}}
{{- end }}

{{- define "zklock.appVolumeMounts.items" -}}
{{- if eq .Values.listen.mode "unix" }}
- name: zklock-socket
  mountPath: {{ .Values.listen.socketDir }}
{{- end }}
{{- end }}

{{- define "zklock.appEnv" -}}
- name: ZKLOCK_ADDR
  value: {{ include "zklock.address" . | quote }}
{{- end }}

{{/* zklock.address: where a process in the pod dials zklockd. */}}
{{- define "zklock.address" -}}
{{- if eq .Values.listen.mode "unix" -}}
unix://{{ include "zklock.socketPath" . }}
{{- else -}}
{{- $host := .Values.listen.address | toString -}}
{{- if has $host (list "" "0.0.0.0" "::" "[::]") -}}
{{- $host = "127.0.0.1" -}}
{{- end -}}
{{- include "zklock.joinHostPort" (dict "host" $host "port" .Values.listen.port) -}}
{{- end -}}
{{- end }}

{{/* zklock.listen: the value of --listen. */}}
{{- define "zklock.listen" -}}
{{- if eq .Values.listen.mode "unix" -}}
unix://{{ include "zklock.socketPath" . }}
{{- else -}}
{{- include "zklock.joinHostPort" (dict "host" (.Values.listen.address | toString) "port" .Values.listen.port) -}}
{{- end -}}
{{- end }}

{{/* zklock.httpListen: the value of --http-listen (http.enabled). */}}
{{- define "zklock.httpListen" -}}
{{- if eq .Values.listen.mode "unix" -}}
unix://{{ include "zklock.httpSocketPath" . }}
{{- else -}}
{{- include "zklock.joinHostPort" (dict "host" (.Values.listen.address | toString) "port" .Values.http.port) -}}
{{- end -}}
{{- end }}

{{/*
zklock.httpAddress: where a process in the pod reaches the HTTP/JSON
listener: host:port (http://, or https:// with tls.enabled), or
unix:///path (curl --unix-socket).
*/}}
{{- define "zklock.httpAddress" -}}
{{- if eq .Values.listen.mode "unix" -}}
unix://{{ include "zklock.httpSocketPath" . }}
{{- else -}}
{{- $host := .Values.listen.address | toString -}}
{{- if has $host (list "" "0.0.0.0" "::" "[::]") -}}
{{- $host = "127.0.0.1" -}}
{{- end -}}
{{- include "zklock.joinHostPort" (dict "host" $host "port" .Values.http.port) -}}
{{- end -}}
{{- end }}

{{- define "zklock.httpSocketPath" -}}
{{- printf "%s/%s" (trimSuffix "/" .Values.listen.socketDir) .Values.http.socketName -}}
{{- end }}

{{- define "zklock.socketPath" -}}
{{- printf "%s/%s" (trimSuffix "/" .Values.listen.socketDir) .Values.listen.socketName -}}
{{- end }}

{{/* zklock.joinHostPort (dict "host" H "port" P): H:P, [H]:P for IPv6. */}}
{{- define "zklock.joinHostPort" -}}
{{- $host := trimAll "[]" .host -}}
{{- if contains ":" $host -}}
{{- printf "[%s]:%d" $host (int .port) -}}
{{- else -}}
{{- printf "%s:%d" $host (int .port) -}}
{{- end -}}
{{- end }}

{{/* zklock.loopback: "true" when the TCP listen address is loopback only. */}}
{{- define "zklock.loopback" -}}
{{- $host := trimAll "[]" (.Values.listen.address | toString) -}}
{{- if or (hasPrefix "127." $host) (eq $host "::1") (eq $host "localhost") -}}
true
{{- end -}}
{{- end }}

{{- define "zklock.image" -}}
{{- $v := .Values.image -}}
{{- if $v.digest -}}
{{- printf "%s@%s" $v.repository $v.digest -}}
{{- else -}}
{{- printf "%s:%s" $v.repository (toString ($v.tag | default .Chart.AppVersion)) -}}
{{- end -}}
{{- end }}

{{- define "zklock.probeHandler" -}}
{{- $v := .Values -}}
{{- if eq $v.probes.type "grpc" -}}
{{- /* GRPCAction.port is a number: a port name is not allowed here. */ -}}
grpc:
  port: {{ $v.health.port }}
{{- else -}}
exec:
  command:
    - {{ $v.probes.execCommand }}
    - {{ printf "-addr=%s" (include "zklock.address" .) | quote }}
    {{- if $v.tls.enabled }}
    - "-tls"
    - "-tls-no-verify"
    {{- if $v.tls.clientCA.enabled }}
    - "-tls-client-cert=/etc/zklock/tls/tls.crt"
    - "-tls-client-key=/etc/zklock/tls/tls.key"
    {{- end }}
    {{- end }}
{{- end -}}
{{- end }}

{{- define "zklock.probeTiming" -}}
initialDelaySeconds: {{ int .initialDelaySeconds }}
periodSeconds: {{ int .periodSeconds }}
timeoutSeconds: {{ int .timeoutSeconds }}
failureThreshold: {{ int .failureThreshold }}
{{- end }}

{{/*
zklock.seconds: a Go duration ("10s", "1m30s", "500ms") in whole seconds,
rounded up.
*/}}
{{- define "zklock.seconds" -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h)" (toString .) -1 -}}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" . -}}
{{- $unit := trimPrefix $num . -}}
{{- $scale := get (dict "ns" 1e-9 "us" 1e-6 "µs" 1e-6 "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0) $unit -}}
{{- $total = addf $total (mulf (float64 $num) $scale) -}}
{{- end -}}
{{- ceil $total | int -}}
{{- end }}

{{/*
zklock.terminationGracePeriodSeconds: the least grace period the pod
needs: the preStop sleep, then --shutdown-timeout, plus 5 s to spare.
*/}}
{{- define "zklock.terminationGracePeriodSeconds" -}}
{{- add (include "zklock.seconds" .Values.shutdownTimeout | int) (int .Values.preStopSleepSeconds) 5 -}}
{{- end }}

{{/* zklock.validate: fails the render on values that cannot work. */}}
{{- define "zklock.validate" -}}
{{- $v := .Values -}}
{{- if not (has $v.listen.mode (list "tcp" "unix")) -}}
{{- fail (printf "zklock: listen.mode must be tcp or unix, not %q" $v.listen.mode) -}}
{{- end -}}
{{- if not (has $v.probes.type (list "exec" "grpc" "none")) -}}
{{- fail (printf "zklock: probes.type must be exec, grpc or none, not %q" $v.probes.type) -}}
{{- end -}}
{{- if not $v.zookeeper.connect -}}
{{- fail "zklock: zookeeper.connect is required (host:port of the ZooKeeper servers, separated by commas)" -}}
{{- end -}}
{{- if eq $v.probes.type "grpc" -}}
{{- if and (eq $v.listen.mode "tcp") (eq (int $v.health.port) (int $v.listen.port)) -}}
{{- fail (printf "zklock: health.port and listen.port are both %d (probes.type=grpc serves health on a port of its own)" (int $v.health.port)) -}}
{{- end -}}
{{- if and $v.metrics.enabled (eq (int $v.health.port) (int $v.metrics.port)) -}}
{{- fail (printf "zklock: health.port and metrics.port are both %d" (int $v.health.port)) -}}
{{- end -}}
{{- end -}}
{{- if and $v.tls.enabled (not $v.tls.secretName) -}}
{{- fail "zklock: tls.enabled needs tls.secretName (a Secret with the certificate and key)" -}}
{{- end -}}
{{- if and $v.tls.enabled (eq $v.listen.mode "unix") -}}
{{- fail "zklock: tls.enabled with listen.mode=unix: zklockd refuses TLS on a unix socket (the socket's mode decides who may connect)" -}}
{{- end -}}
{{- if and $v.tls.clientCA.enabled (not $v.tls.enabled) -}}
{{- fail "zklock: tls.clientCA.enabled needs tls.enabled" -}}
{{- end -}}
{{- if $v.http.enabled -}}
{{- if eq $v.listen.mode "tcp" -}}
{{- if eq (int $v.http.port) (int $v.listen.port) -}}
{{- fail (printf "zklock: http.port and listen.port are both %d" (int $v.http.port)) -}}
{{- end -}}
{{- if and (eq $v.probes.type "grpc") (eq (int $v.http.port) (int $v.health.port)) -}}
{{- fail (printf "zklock: http.port and health.port are both %d (probes.type=grpc serves health on a port of its own)" (int $v.http.port)) -}}
{{- end -}}
{{- if and $v.metrics.enabled (eq (int $v.http.port) (int $v.metrics.port)) -}}
{{- fail (printf "zklock: http.port and metrics.port are both %d" (int $v.http.port)) -}}
{{- end -}}
{{- else if eq (toString $v.http.socketName) (toString $v.listen.socketName) -}}
{{- fail (printf "zklock: http.socketName and listen.socketName are both %q (each listener needs a socket of its own)" (toString $v.http.socketName)) -}}
{{- end -}}
{{- end -}}
{{- if and $v.metrics.enabled (eq $v.listen.mode "tcp") (eq (int $v.metrics.port) (int $v.listen.port)) -}}
{{- fail (printf "zklock: metrics.port and listen.port are both %d" (int $v.listen.port)) -}}
{{- end -}}
{{- if and $v.nativeSidecar (semverCompare "<1.29.0-0" .Capabilities.KubeVersion.Version) -}}
{{- fail (printf "zklock: nativeSidecar needs Kubernetes 1.29 or later (this is %s)" .Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{- if and (gt (int $v.preStopSleepSeconds) 0) (semverCompare "<1.30.0-0" .Capabilities.KubeVersion.Version) -}}
{{- fail (printf "zklock: preStopSleepSeconds needs Kubernetes 1.30 or later (this is %s)" .Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{- end }}
