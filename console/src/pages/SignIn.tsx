import { FormEvent, useState } from 'react';
import { SessionState, signIn } from '../api';
import { useLocale } from '../i18n';

export function SignIn({ onSignedIn }: { onSignedIn: (state: SessionState) => void }) {
  const { t } = useLocale();
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError('');
    try {
      onSignedIn(await signIn(key));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card sign-in" onSubmit={submit}>
      <h2>{t('signIn')}</h2>
      <p className="muted">{t('signInHint')}</p>
      <label>
        {t('apiKey')}
        <input
          type="password"
          autoComplete="current-password"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          data-testid="api-key"
          required
        />
      </label>
      <button type="submit" disabled={busy} data-testid="sign-in">
        {busy ? t('signingIn') : t('signIn')}
      </button>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
