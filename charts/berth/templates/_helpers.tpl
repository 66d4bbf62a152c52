{{- define "berth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "berth.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "berth.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "berth.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "berth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "berth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: broker
{{- end }}

{{- define "berth.controllerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "berth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "berth.serviceAccountName" -}}
{{- default (include "berth.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "berth.controllerServiceAccountName" -}}
{{- printf "%s-controller" (include "berth.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Secret used as the broker's environment. */}}
{{- define "berth.secretName" -}}
{{- default (include "berth.fullname" .) .Values.credentials.existingSecret }}
{{- end }}

{{- define "berth.catalogConfigMap" -}}
{{- default (printf "%s-catalog" (include "berth.fullname" .)) .Values.catalog.existingConfigMap }}
{{- end }}

{{- define "berth.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "berth.scheme" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end }}
{{- end }}

{{- define "berth.servicePort" -}}
{{- if .Values.tls.enabled }}{{ .Values.service.tlsPort }}{{ else }}{{ .Values.service.port }}{{ end }}
{{- end }}

{{/* The in-cluster URL of this release's Service. */}}
{{- define "berth.serviceUrl" -}}
{{- printf "%s://%s.%s.svc:%v" (include "berth.scheme" .) (include "berth.fullname" .) .Release.Namespace (include "berth.servicePort" .) }}
{{- end }}

{{/* Berth's identity as the API server sees it (the admission policy matches it). */}}
{{- define "berth.username" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "berth.serviceAccountName" .) }}
{{- end }}

{{/*
The generated credentials, computed once per render and shared by every
template (the Secret, the registration Secrets): the values given, else what the
release's Secret already holds (lookup, so upgrades keep them), else random.
*/}}
{{- define "berth.generated" -}}
{{- if not (hasKey .Values "generatedOnce") }}
{{- $old := dict }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "berth.fullname" .) }}
{{- if $existing }}{{ $old = (get $existing "data") | default dict }}{{ end }}
{{- $password := .Values.credentials.brokerPassword | default ((get $old "BROKER_PASSWORD") | b64dec) | default (randAlphaNum 32) }}
{{- $keys := .Values.credentials.encryptionKeys | default ((get $old "BERTH_ENCRYPTION_KEYS") | b64dec) | default (printf "k1:%s" (randBytes 32)) }}
{{- $tokens := .Values.auth.bearer.tokens }}
{{- if and .Values.registration.serviceCatalog.enabled (eq .Values.registration.serviceCatalog.authType "bearer") (not .Values.registration.serviceCatalog.authSecretName) (not $tokens) }}
{{- $tokens = list (((get $old "BERTH_BEARER_TOKENS") | b64dec) | default (randAlphaNum 48)) }}
{{- end }}
{{- $_ := set .Values "generatedOnce" (dict "password" $password "keys" $keys "tokens" $tokens) }}
{{- end }}
{{- end }}

{{- define "berth.checkValues" -}}
{{- if and (not .Values.credentials.existingSecret) (not .Values.credentials.databaseUrl) }}
{{- fail "credentials.databaseUrl is required (a PostgreSQL URL Berth's replicas share), or credentials.existingSecret naming a Secret with DATABASE_URL, BERTH_ENCRYPTION_KEYS and the broker credentials" }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) }}
{{- fail "tls.enabled needs tls.existingSecret: a kubernetes.io/tls Secret (tls.crt, tls.key), e.g. from cert-manager" }}
{{- end }}
{{- if and .Values.tls.clientCA.enabled (not .Values.tls.enabled) }}
{{- fail "tls.clientCA.enabled needs tls.enabled: client certificates are checked on the HTTPS listener" }}
{{- end }}
{{- if and .Values.auth.tokenReview.enabled (not .Values.auth.tokenReview.allowed) }}
{{- fail "auth.tokenReview.enabled needs auth.tokenReview.allowed: system:serviceaccount:NAMESPACE:NAME and/or group:NAME entries (otherwise every ServiceAccount of the cluster could use the broker)" }}
{{- end }}
{{- if and .Values.credentials.existingSecret (or .Values.registration.berth.enabled .Values.registration.serviceCatalog.enabled) }}
{{- if and .Values.registration.berth.enabled (not .Values.registration.berth.authSecretName) }}
{{- fail "registration.berth.authSecretName is required with credentials.existingSecret: the chart does not know the broker credentials to put in it" }}
{{- end }}
{{- if and .Values.registration.serviceCatalog.enabled (not .Values.registration.serviceCatalog.authSecretName) }}
{{- fail "registration.serviceCatalog.authSecretName is required with credentials.existingSecret: the chart does not know the broker credentials to put in it" }}
{{- end }}
{{- end }}
{{- end }}
