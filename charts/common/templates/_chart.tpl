{{/*
Everything a service chart deploys, from its spec. A service chart's whole template is
  {{ include "allot-common.serviceChart" (dict "ctx" . "spec" (include "<chart>.spec" . | fromYaml)) }}
where <chart>.spec (in the chart's _helpers.tpl) says what is particular to the service:

  secretKeys: [DATABASE_URL, ...]   keys read from the credentials Secret (the deploy contract)
  optionalSecretKeys: [...]         keys passed on when the Secret has them
  backends: [postgres, redis, nats] egress the NetworkPolicy opens (also hub, api: networkPolicy.backends)
  ingressFromRelease: true          let this release's pods reach port http
  migrations: true                  the service owns tables: render the migration hook Job
  env: {NAME: value}                plain variables for the env ConfigMap (null values are left out)
  processes:                        one Deployment (+ Service, HPA, PDB, NetworkPolicy, ServiceMonitor) each
    - component: server             app.kubernetes.io/component; the first process keeps the fullname
      values: ""                    key of its values ("" = the chart's top level, e.g. worker)
      args: ["server.mjs"]
      env: {NAME: value}            plain variables of this process only
      autoscaling: true             whether an HPA may own its replicas
      strategy: RollingUpdate       or Recreate (the uplink: never two agents at once)

A process whose values have enabled: false is left out.
*/}}
{{- define "allot-common.serviceChart" -}}
{{- $ctx := .ctx -}}
{{- $spec := .spec -}}
{{- if hasKey $spec "Error" }}{{ fail (printf "the chart's spec is not valid YAML: %s" $spec.Error) }}{{ end -}}
{{- include "allot-common.serviceAccount" $ctx }}
---
{{ include "allot-common.configMap" (dict "ctx" $ctx "spec" $spec) }}
---
{{ include "allot-common.devSecret" (dict "ctx" $ctx "spec" $spec) }}
---
{{ include "allot-common.migrationJob" (dict "ctx" $ctx "spec" $spec) }}
{{- range $i, $process := $spec.processes }}
{{- $values := $ctx.Values }}
{{- if $process.values }}{{ $values = index $ctx.Values $process.values }}{{ end }}
{{- if or (not $process.values) $values.enabled }}
{{- $name := include "allot-common.processName" (dict "ctx" $ctx "component" $process.component "primary" (eq $i 0)) }}
{{- $p := dict "ctx" $ctx "spec" $spec "process" $process "values" $values "name" $name "primary" (eq $i 0) }}
---
{{ include "allot-common.deployment" $p }}
---
{{ include "allot-common.service" $p }}
---
{{ include "allot-common.hpa" $p }}
---
{{ include "allot-common.pdb" $p }}
---
{{ include "allot-common.networkPolicy" $p }}
---
{{ include "allot-common.serviceMonitor" $p }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
NOTES.txt of a service chart: what was installed and how to see it answer.
(dict "ctx" $ "spec" $spec "what" "a one-line description")
*/}}
{{- define "allot-common.notes" -}}
{{- $ctx := .ctx -}}
{{- $ns := $ctx.Release.Namespace -}}
{{- $fullname := include "allot-common.fullname" $ctx -}}
Allot {{ include "allot-common.name" $ctx }} {{ $ctx.Chart.AppVersion }} ({{ .what }}) is installed in namespace {{ $ns }}.
Watch it become ready (/readyz answers once its backends do):
{{ range $i, $process := .spec.processes }}
{{- $values := $ctx.Values }}
{{- if .values }}{{ $values = index $ctx.Values .values }}{{ end }}
{{- if or (not .values) $values.enabled }}
  kubectl -n {{ $ns }} rollout status deployment/{{ include "allot-common.processName" (dict "ctx" $ctx "component" .component "primary" (eq $i 0)) }}
{{- end }}
{{- end }}
  kubectl -n {{ $ns }} port-forward svc/{{ $fullname }} 8080:{{ $ctx.Values.service.port }} &
  curl -s http://localhost:8080/readyz
{{- if not (include "allot-common.existingSecret" $ctx) }}

WARNING: no existingSecret is set, so the credentials come from values
(secret {{ include "allot-common.secretName" $ctx }}). That is for development only: create a Secret with
the keys {{ join ", " .spec.secretKeys }} and set existingSecret.
{{- end }}
{{- end -}}
