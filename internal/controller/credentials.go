package controller

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	bitcoinv1alpha1 "github.com/bitcoinops/bitcoin-operator/api/v1alpha1"
	"github.com/bitcoinops/bitcoin-operator/internal/bitcoin"
	"github.com/bitcoinops/bitcoin-operator/internal/render"
)

// credentials are a network's RPC username and password and the Secret that holds
// them. They print as the Secret's name only, so that no log line or error can carry
// them by accident.
type credentials struct {
	secret, version string // the Secret's name and resourceVersion
	user, password  string
}

func (c credentials) String() string { return fmt.Sprintf("credentials of Secret %q", c.secret) }

// problem is something the user has to fix: a condition reason and a message that says
// what to do.
type problem struct{ reason, message string }

// generatedSecretName is the Secret the operator creates for a network without
// spec.secret.
func generatedSecretName(network *bitcoinv1alpha1.BitcoinNetwork) string {
	return network.Name + "-rpc-credentials"
}

// secretName is the Secret that holds a network's credentials.
func secretName(network *bitcoinv1alpha1.BitcoinNetwork) string {
	if network.Spec.Secret != "" {
		return network.Spec.Secret
	}
	return generatedSecretName(network)
}

// readCredentials reads a network's credentials from its Secret through r, which must
// read Secrets whole (the manager's cache holds their metadata only). A Secret the user
// must fix gives a problem; messages name keys, never values.
func readCredentials(ctx context.Context, r client.Reader, network *bitcoinv1alpha1.BitcoinNetwork) (*credentials, *problem, error) {
	name := secretName(network)
	secret := &corev1.Secret{}
	err := r.Get(ctx, keyOf(network, name), secret)
	if apierrors.IsNotFound(err) {
		if network.Spec.Secret == "" {
			return nil, nil, nil // not generated yet
		}
		return nil, &problem{"SecretNotFound", fmt.Sprintf("Secret %q named by spec.secret does not exist in namespace %q: create it (type kubernetes.io/basic-auth, keys username and password)",
			name, network.Namespace)}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("failed to read Secret %q: %w", name, err)
	}
	if network.Spec.Secret == "" && !metav1.IsControlledBy(secret, network) {
		return nil, &problem{"SecretConflict", fmt.Sprintf("Secret %q exists but was not generated for this network: delete it, or name it in spec.secret to use its credentials",
			name)}, nil
	}
	if prob := checkSecret(secret); prob != nil {
		return nil, prob, nil
	}
	return &credentials{secret: name, version: secret.ResourceVersion, user: string(secret.Data[corev1.BasicAuthUsernameKey]),
		password: string(secret.Data[corev1.BasicAuthPasswordKey])}, nil, nil
}

// checkSecret returns what the user must fix in a credentials Secret, if anything.
// Only the type the API documents is read: an Opaque Secret may hold anything, and
// its contents must not be sent to the nodes as credentials by guesswork.
func checkSecret(secret *corev1.Secret) *problem {
	if secret.Type != corev1.SecretTypeBasicAuth {
		return &problem{"SecretTypeInvalid", fmt.Sprintf("Secret %q is of type %q, not %s: recreate it with that type (a Secret's type cannot change) and the keys username and password",
			secret.Name, secret.Type, corev1.SecretTypeBasicAuth)}
	}
	_, hasUser := secret.Data[corev1.BasicAuthUsernameKey]
	if !hasUser || len(secret.Data[corev1.BasicAuthPasswordKey]) == 0 {
		key := corev1.BasicAuthPasswordKey
		if !hasUser {
			key = corev1.BasicAuthUsernameKey
		}
		return &problem{"SecretKeyMissing", fmt.Sprintf("Secret %q has no key %q (or it is empty): add it", secret.Name, key)}
	}
	if why := usernameProblem(string(secret.Data[corev1.BasicAuthUsernameKey])); why != "" {
		return &problem{"InvalidUsername", fmt.Sprintf("The username in Secret %q %s", secret.Name, why)}
	}
	return nil
}

// usernameProblem says what is wrong with a username and what to do, never quoting it.
func usernameProblem(user string) string {
	switch bitcoin.CheckUsername(user) {
	case nil:
		return ""
	case bitcoin.ErrUsernameEmpty:
		return "is empty: set a username"
	case bitcoin.ErrUsernameColon:
		return "contains ':', which Bitcoin Core's rpcauth and HTTP basic auth cannot carry: choose a username without it"
	case bitcoin.ErrUsernameUTF8:
		return "is not valid UTF-8, which a pod's arguments cannot carry: choose a UTF-8 username"
	default:
		return "contains a control character (a newline, a tab, ...), which must not reach bitcoind's arguments: choose a username without one"
	}
}

// ensureCredentials returns a network's credentials, first generating them into a
// Secret the network owns when spec.secret is unset: the garbage collector removes it
// with the network. The operator never changes a Secret once it exists.
func (r *NetworkReconciler) ensureCredentials(ctx context.Context, network *bitcoinv1alpha1.BitcoinNetwork, done *changes) (*credentials, *problem, error) {
	creds, prob, err := readCredentials(ctx, r.APIReader, network)
	if creds != nil || prob != nil || err != nil || network.Spec.Secret != "" {
		return creds, prob, err
	}
	secret, err := newCredentialsSecret(network)
	if err != nil {
		return nil, nil, err
	}
	if err := controllerutil.SetControllerReference(network, secret, r.Scheme()); err != nil {
		return nil, nil, reconcile.TerminalError(err)
	}
	// Create decodes the server's answer into secret, which holds Data, not StringData.
	creds = &credentials{secret: secret.Name, user: secret.StringData[corev1.BasicAuthUsernameKey],
		password: secret.StringData[corev1.BasicAuthPasswordKey]}
	if err := r.Create(ctx, secret, client.FieldOwner(fieldOwner)); err != nil {
		if apierrors.IsAlreadyExists(err) { // created since we read: read it again
			return readCredentials(ctx, r.APIReader, network)
		}
		return nil, nil, fmt.Errorf("failed to create Secret %q: %w", secret.Name, err)
	}
	done.create(ctx, "Secret", secret.Name, "with generated RPC credentials")
	creds.version = secret.ResourceVersion
	return creds, nil, nil
}

// newCredentialsSecret returns a basic-auth Secret for the network with a random
// username and a random 256-bit password. A random username costs nothing and gives
// tests something to look for that no log line holds by chance.
func newCredentialsSecret(network *bitcoinv1alpha1.BitcoinNetwork) (*corev1.Secret, error) {
	random := make([]byte, 36)
	if _, err := rand.Read(random); err != nil {
		return nil, reconcile.TerminalError(err)
	}
	user, password := random[:4], random[4:]
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      generatedSecretName(network),
			Namespace: network.Namespace,
			Labels:    map[string]string{render.LabelManagedBy: render.ManagedBy, render.LabelInstance: network.Name},
		},
		Type: corev1.SecretTypeBasicAuth,
		StringData: map[string]string{
			corev1.BasicAuthUsernameKey: "rpc-" + hex.EncodeToString(user),
			// base64url: no character that a shell, a URL or bitcoin-cli's
			// -rpcpassword would need escaped.
			corev1.BasicAuthPasswordKey: base64.RawURLEncoding.EncodeToString(password),
		},
	}, nil
}

// networksOfSecret maps a Secret to the networks in its namespace whose credentials it
// holds: those that name it in spec.secret, and the one it was generated for.
func networksOfSecret(c client.Reader) handler.MapFunc {
	return func(ctx context.Context, secret client.Object) []reconcile.Request {
		var networks bitcoinv1alpha1.BitcoinNetworkList
		if err := c.List(ctx, &networks, client.InNamespace(secret.GetNamespace()),
			client.MatchingFields{indexSecret: secret.GetName()}); err != nil {
			log.FromContext(ctx).Error(err, "Failed to list the networks that name a Secret", "secret", client.ObjectKeyFromObject(secret))
			return nil
		}
		requests := make([]reconcile.Request, 0, len(networks.Items)+1)
		for _, n := range networks.Items {
			requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&n)})
		}
		if name, ok := controllingNetwork(secret); ok {
			requests = append(requests, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: secret.GetNamespace(), Name: name}})
		}
		return requests
	}
}
