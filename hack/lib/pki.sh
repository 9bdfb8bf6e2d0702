# shellcheck shell=bash
# Certificates, tokens and kubeconfigs of one local cluster (sourced by hack/cluster).
#
# Everything is generated once per state directory (on the first `up`) and reused
# when the cluster is restarted in place; `down` removes it with the state.
#   pki/ca.{crt,key}          cluster CA (also --root-ca-file and the CSR signer)
#   pki/apiserver.{crt,key}   serving certificate for 127.0.0.1 and kubernetes.default.svc
#   pki/front-proxy-*         request-header CA and the apiserver's proxy client certificate
#   pki/sa.{key,pub}          service-account token signing key pair
#   pki/tokens.csv            static bearer tokens (--token-auth-file), one per identity
#   *.kubeconfig              one per identity; kubeconfig is the admin one

# Service network; its first address is the `kubernetes` Service, named in the serving cert.
# shellcheck disable=SC2034 # used by hack/cluster
PS_SERVICE_CIDR="10.96.0.0/16"
PS_SERVICE_IP="10.96.0.1"

# new_ca NAME CN: self-signed CA certificate NAME.crt and key NAME.key.
new_ca() {
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=$2" \
    -keyout "$1.key" -out "$1.crt" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,digitalSignature,keyCertSign,cRLSign" 2>/dev/null
}

# new_cert NAME CN CA USAGE [SANS]: key NAME.key and certificate NAME.crt signed by CA.
new_cert() {
  local name="$1" cn="$2" ca="$3" usage="$4" sans="${5:-}"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=${usage}"
    echo "subjectKeyIdentifier=hash"
    echo "authorityKeyIdentifier=keyid,issuer"
    [[ -z "$sans" ]] || echo "subjectAltName=${sans}"
  } > "${name}.ext"
  openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=${cn}" \
    -keyout "${name}.key" -out "${name}.csr" 2>/dev/null
  openssl x509 -req -in "${name}.csr" -CA "${ca}.crt" -CAkey "${ca}.key" -sha256 -days 3650 \
    -set_serial "0x$(openssl rand -hex 16)" -extfile "${name}.ext" -out "${name}.crt" 2>/dev/null
  rm -f "${name}.csr" "${name}.ext"
}

pki_generate() {
  local pki="$1"
  [[ -f "${pki}/.complete" ]] && return 0
  mkdir -p "$pki"
  chmod 700 "$pki"
  (
    set -euo pipefail
    cd "$pki"
    new_ca ca paretoscale-local-ca
    new_cert apiserver kube-apiserver ca serverAuth \
      "IP:127.0.0.1,IP:${PS_SERVICE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    # Request-header (front proxy) pair: lets kube-controller-manager and kube-scheduler
    # load a complete extension-apiserver-authentication ConfigMap, and aggregated API
    # servers work if one is ever added.
    new_ca front-proxy-ca paretoscale-local-front-proxy-ca
    new_cert front-proxy-client front-proxy-client front-proxy-ca clientAuth
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    {
      printf '%s,admin,uid-admin,system:masters\n' "$(openssl rand -hex 24)"
      printf '%s,system:kube-controller-manager,uid-kube-controller-manager\n' "$(openssl rand -hex 24)"
      printf '%s,system:kube-scheduler,uid-kube-scheduler\n' "$(openssl rand -hex 24)"
      printf '%s,system:kwok,uid-kwok,system:masters\n' "$(openssl rand -hex 24)"
    } > tokens.csv
    chmod 600 ./*.key tokens.csv
    touch .complete
  ) || die "generating certificates in ${pki} failed (is openssl installed?)"
}

# Token of a user listed in tokens.csv.
pki_token() {
  local pki="$1" user="$2"
  awk -F, -v u="$user" '$2 == u {print $1; exit}' "${pki}/tokens.csv"
}

# write_kubeconfig FILE SERVER CA_FILE USER TOKEN CONTEXT
write_kubeconfig() {
  local file="$1" server="$2" ca="$3" user="$4" token="$5" context="$6"
  local ca_data
  ca_data="$(base64 -w0 < "$ca")"
  (umask 077 && cat > "$file") <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: ${context}
  cluster:
    server: ${server}
    certificate-authority-data: ${ca_data}
users:
- name: ${user}
  user:
    token: ${token}
contexts:
- name: ${context}
  context:
    cluster: ${context}
    user: ${user}
current-context: ${context}
KUBECONFIG
}
