// The console's shell: session (sign-in or the loopback open mode), language, time zone and the
// page tabs. The page in view is kept in the URL hash (#dashboard, #stock, ...).
import { useCallback, useEffect, useMemo, useState } from 'react';
import { readSession, signOut, SessionState, useSession, whenSignedOut } from './api';
import { Language, locale, LocaleContext, saveLanguage, savedLanguage, Key } from './i18n';
import { usableZone } from './format';
import { SignIn } from './pages/SignIn';
import { Dashboard } from './pages/Dashboard';
import { Stock } from './pages/Stock';
import { Orders } from './pages/Orders';
import { Reservations } from './pages/Reservations';

const PAGES = ['dashboard', 'stock', 'orders', 'reservations'] as const;
type Page = (typeof PAGES)[number];

function pageFromHash(): Page {
  const name = window.location.hash.replace(/^#/, '');
  return (PAGES as readonly string[]).includes(name) ? (name as Page) : 'dashboard';
}

export function App() {
  const [language, setLanguage] = useState<Language>(savedLanguage());
  const [session, setSession] = useState<SessionState | null>(null);
  const [failure, setFailure] = useState('');
  const [page, setPage] = useState<Page>(pageFromHash());

  const adopt = useCallback((state: SessionState) => {
    useSession(state);
    setSession(state);
  }, []);

  const reload = useCallback(() => {
    readSession()
      .then(adopt)
      .catch((e) => setFailure(String(e.message ?? e)));
  }, [adopt]);

  useEffect(() => {
    reload();
    whenSignedOut(reload);
    const onHash = () => setPage(pageFromHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, [reload]);

  const current = useMemo(() => locale(language, usableZone(session?.time_zone ?? 'Asia/Shanghai')), [language, session]);

  useEffect(() => {
    document.documentElement.lang = language;
    document.title = current.t('title');
  }, [language, current]);

  const switchLanguage = () => {
    const next: Language = language === 'zh-CN' ? 'en' : 'zh-CN';
    saveLanguage(next);
    setLanguage(next);
  };

  const { t } = current;
  let body;
  if (!session) body = <p className="muted">{failure || t('loading')}</p>;
  else if (!session.signed_in) body = <SignIn onSignedIn={adopt} />;
  else if (page === 'dashboard') body = <Dashboard />;
  else if (page === 'stock') body = <Stock />;
  else if (page === 'orders') body = <Orders />;
  else body = <Reservations />;

  return (
    <LocaleContext.Provider value={current}>
      <header className="top">
        <h1>{t('title')}</h1>
        {session?.signed_in && (
          <nav>
            {PAGES.map((name) => (
              <a key={name} href={`#${name}`} className={name === page ? 'active' : ''} data-testid={`nav-${name}`}>
                {t(name as Key)}
              </a>
            ))}
          </nav>
        )}
        <div className="session">
          {session?.signed_in && (
            <span className="muted" data-testid="who">
              {session.sign_in_required ? `${session.who?.name} (${session.who?.role})` : t('openMode')}
            </span>
          )}
          <span className="muted">{current.zone}</span>
          <button type="button" onClick={switchLanguage} data-testid="language">
            {t('language')}
          </button>
          {session?.signed_in && session.sign_in_required && (
            <button type="button" onClick={() => signOut().finally(reload)} data-testid="sign-out">
              {t('signOut')}
            </button>
          )}
        </div>
      </header>
      <main>{body}</main>
    </LocaleContext.Provider>
  );
}
