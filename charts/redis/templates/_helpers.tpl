{{/*
Every object is named from the release name alone, so Berth can find them:
  Service and StatefulSet: <release>
  Secret:                  <release>-credentials
*/}}
{{- define "redis.fullname" -}}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" .Release.Name) -}}
{{- fail (printf "release name %q must be a DNS-1035 label (lower-case letters, digits and '-', starting with a letter) because it names the Service" .Release.Name) -}}
{{- end -}}
{{- .Release.Name -}}
{{- end -}}

{{- define "redis.secretName" -}}
{{- printf "%s-credentials" (include "redis.fullname" .) -}}
{{- end -}}

{{/* Labels that select the pod; never change them (the selector is immutable). */}}
{{- define "redis.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Labels that do not change across chart versions or upgrades; used on the
volumeClaimTemplate, whose labels cannot be changed after creation. Not
commonLabels: they may change on an upgrade (Berth puts the plan there), and
a StatefulSet refuses any change to its volumeClaimTemplates.
*/}}
{{- define "redis.stableLabels" -}}
{{- toYaml (dict "app.kubernetes.io/name" .Chart.Name "app.kubernetes.io/instance" .Release.Name "app.kubernetes.io/managed-by" .Release.Service) -}}
{{- end -}}

{{/* Labels for every object. */}}
{{- define "redis.labels" -}}
{{- $own := dict "app.kubernetes.io/name" .Chart.Name "app.kubernetes.io/instance" .Release.Name "app.kubernetes.io/managed-by" .Release.Service "app.kubernetes.io/version" .Chart.AppVersion "helm.sh/chart" (printf "%s-%s" .Chart.Name .Chart.Version) -}}
{{- toYaml (merge $own (.Values.commonLabels | default dict)) -}}
{{- end -}}

{{/*
The password: auth.password when given; otherwise the one already in the
release's Secret (so `helm upgrade` keeps it); otherwise a new random one.
`lookup` returns nothing under `helm template` and client-side dry runs, so a
new random password is shown there.
*/}}
{{- define "redis.password" -}}
{{- if .Values.auth.password -}}
{{- .Values.auth.password -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "redis.secretName" .) | default dict -}}
{{- $current := dig "data" "password" "" $existing -}}
{{- if $current -}}
{{- b64dec $current -}}
{{- else -}}
{{- randAlphaNum 32 -}}
{{- end -}}
{{- end -}}
{{- end -}}
