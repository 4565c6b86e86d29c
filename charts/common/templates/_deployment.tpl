{{/*
One Deployment per process. Called with a process context built by allot-common.serviceChart:
  ctx      the chart's root context
  spec     the chart's spec (allot-common.serviceChart documents it)
  process  one entry of spec.processes
  values   that process's values (replicaCount, resources, autoscaling, pdb, env)
  name     the process's object name
Every process listens on 8080 (named http) with /healthz, /readyz and /metrics.
*/}}

{{- define "allot-common.deployment" -}}
{{- $ctx := .ctx -}}
{{- $v := .values -}}
{{- $component := .process.component -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "allot-common.labels" (dict "ctx" $ctx "component" $component) | nindent 4 }}
spec:
  {{- if not (include "allot-common.autoscaled" .) }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  {{- if eq (.process.strategy | default "RollingUpdate") "Recreate" }}
  strategy:
    type: Recreate
  {{- else }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  {{- end }}
  selector:
    matchLabels:
      {{- include "allot-common.selectorLabels" (dict "ctx" $ctx "component" $component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "allot-common.labels" (dict "ctx" $ctx "component" $component) | nindent 8 }}
        {{- with $ctx.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include "allot-common.configMap" (dict "ctx" $ctx "spec" .spec) | sha256sum }}
        {{- if not (include "allot-common.existingSecret" $ctx) }}
        checksum/secret: {{ include "allot-common.devSecret" (dict "ctx" $ctx "spec" .spec) | sha256sum }}
        {{- end }}
        {{- with $ctx.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "allot-common.serviceAccountName" $ctx }}
      automountServiceAccountToken: false
      {{- with include "allot-common.imagePullSecrets" $ctx }}{{ . | trim | nindent 6 }}{{ end }}
      securityContext:
        {{- include "allot-common.podSecurityContext" $ctx | nindent 8 }}
      terminationGracePeriodSeconds: {{ $ctx.Values.terminationGracePeriodSeconds }}
      {{- with $ctx.Values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with $ctx.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $ctx.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $ctx.Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $ctx.Values.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- range . }}
        - {{ toYaml (merge (deepCopy .) (dict "labelSelector" (dict "matchLabels" (include "allot-common.selectorLabels" (dict "ctx" $ctx "component" $component) | fromYaml)))) | nindent 10 | trim }}
        {{- end }}
      {{- end }}
      containers:
        - name: {{ $component }}
          image: {{ include "allot-common.image" $ctx }}
          imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
          args: {{ toJson .process.args }}
          ports:
            - name: http
              containerPort: 8080
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "allot-common.configMapName" $ctx }}
          env:
            {{- range $key, $value := .process.env }}
            {{- if not (kindIs "invalid" $value) }}
            - name: {{ $key }}
              value: {{ $value | toString | quote }}
            {{- end }}
            {{- end }}
            {{- include "allot-common.secretEnv" (dict "ctx" $ctx "spec" .spec) | trim | nindent 12 }}
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 2
            timeoutSeconds: 2
            failureThreshold: 60
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 2
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- include "allot-common.containerSecurityContext" $ctx | nindent 12 }}
          volumeMounts:
            {{- include "allot-common.tmpVolumeMount" $ctx | nindent 12 }}
      volumes:
        {{- include "allot-common.tmpVolume" $ctx | nindent 8 }}
{{- end -}}

{{/* "true" when an HPA owns the process's replica count. */}}
{{- define "allot-common.autoscaled" -}}
{{- if and .process.autoscaling .values.autoscaling .values.autoscaling.enabled -}}true{{- end -}}
{{- end -}}

{{/* The fewest replicas the process runs with: what a PDB has to leave up. */}}
{{- define "allot-common.minReplicas" -}}
{{- if include "allot-common.autoscaled" . -}}
{{- .values.autoscaling.minReplicas -}}
{{- else -}}
{{- .values.replicaCount -}}
{{- end -}}
{{- end -}}
