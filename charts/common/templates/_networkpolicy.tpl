{{/*
NetworkPolicy of one process (process context). Ingress: port http only, from this release's
pods, from the namespace when networkPolicy.allowSameNamespace, and from networkPolicy.ingressFrom
(NetworkPolicyPeers, e.g. an ingress controller's or Prometheus's namespace). Egress: DNS, the
backends the chart names in spec.backends (postgres 5432, redis 6379, nats 4222, the hub, the
API for mcp: ports from networkPolicy.backends, each a port or a range {port, endPort}, as a
Redis Cluster's nodes may need), and
networkPolicy.extraEgress. A backend's `to` is a list of peers; empty means any destination on
that port, because managed databases live outside the cluster.
*/}}
{{- define "allot-common.networkPolicy" -}}
{{- $ctx := .ctx -}}
{{- $np := $ctx.Values.networkPolicy -}}
{{- if $np.enabled -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ .name }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "allot-common.labels" (dict "ctx" $ctx "component" .process.component) | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "allot-common.selectorLabels" (dict "ctx" $ctx "component" .process.component) | nindent 6 }}
  policyTypes: ["Ingress", "Egress"]
  {{- $from := list }}
  {{- if .spec.ingressFromRelease }}
  {{- $from = append $from (dict "podSelector" (dict "matchLabels" (dict "app.kubernetes.io/instance" $ctx.Release.Name))) }}
  {{- end }}
  {{- if $np.allowSameNamespace }}
  {{- $from = append $from (dict "podSelector" dict) }}
  {{- end }}
  {{- $from = concat $from ($np.ingressFrom | default list) }}
  {{- if $from }}
  ingress:
    - ports:
        - port: http
          protocol: TCP
      from:
        {{- toYaml $from | nindent 8 }}
  {{- else }}
  ingress: []
  {{- end }}
  egress:
    - ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
      {{- with $np.dns.to }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- range $backend := .spec.backends }}
    {{- $rule := index $np.backends $backend }}
    - ports:
        {{- range $rule.ports }}
        {{- if kindIs "map" . }}
        - port: {{ .port }}
          endPort: {{ .endPort }}
          protocol: TCP
        {{- else }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
        {{- end }}
      {{- with $rule.to }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- end }}
    {{- with $np.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}
{{- end -}}
