//! The typed commands, written once for both clients: `commands!("Client" {} {})` expands
//! them as blocking methods, `commands!("AsyncClient" {async} {.await})` as async ones. Each builds its request
//! and reads its reply through [`crate::reply`], over the client's `call`, `pipeline` and
//! `login` (which apply the connection policy).

macro_rules! commands {
    ($name:literal {$($async:tt)*} {$($await:tt)*}) => {
        impl std::fmt::Debug for Client {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct($name)
                    .field("address", &self.cfg.address)
                    .field("namespace", &self.session.select.as_ref().map(|s| &s.0))
                    .field("connected", &self.is_connected())
                    .finish()
            }
        }

        impl Client {
            /// The configuration.
            pub fn config(&self) -> &$crate::Config {
                &self.cfg
            }

            /// Changes the reply and send timeout (e.g. around a long COMPACT).
            pub fn set_timeout(&mut self, t: std::time::Duration) {
                self.cfg.timeout = t;
                if let Some(c) = &mut self.conn {
                    c.timeout = t;
                }
            }


            /// PING: the server answers.
            pub $($async)* fn ping(&mut self) -> $crate::Result<()> {
                let v = self.call(&[b"PING"]) $($await)* ?;
                $crate::reply::done("PING", v)
            }

            /// GET: the value, or `None` for a missing or deleted key.
            pub $($async)* fn get(&mut self, key: &[u8]) -> $crate::Result<Option<bytes::Bytes>> {
                let v = self.call(&[b"GET", key]) $($await)* ?;
                $crate::reply::get(v)
            }

            /// SET: `true` when written, `false` when the identical value was already there
            /// (0-db writes nothing then). In sequential mode `key` is an existing id
            /// ([`crate::seq_key`]).
            pub $($async)* fn set(&mut self, key: &[u8], value: &[u8]) -> $crate::Result<bool> {
                let v = self.call(&[b"SET", key, value]) $($await)* ?;
                $crate::reply::set(v)
            }

            /// Sequential mode: stores a new value, returns the id the server gave it.
            pub $($async)* fn insert(&mut self, value: &[u8]) -> $crate::Result<u64> {
                let v = self.call(&[b"SET".as_slice(), b"", value]) $($await)* ?;
                $crate::reply::seq_id(v)
            }

            /// DEL: `true` when deleted, `false` when there was no such key.
            pub $($async)* fn del(&mut self, key: &[u8]) -> $crate::Result<bool> {
                let v = self.call(&[b"DEL", key]) $($await)* ?;
                $crate::reply::del(v)
            }

            /// EXISTS.
            pub $($async)* fn exists(&mut self, key: &[u8]) -> $crate::Result<bool> {
                let v = self.call(&[b"EXISTS", key]) $($await)* ?;
                $crate::reply::int("EXISTS", v).map(|n| n > 0)
            }

            /// CHECK: whether the stored value still matches its CRC.
            pub $($async)* fn check(&mut self, key: &[u8]) -> $crate::Result<$crate::Check> {
                let v = self.call(&[b"CHECK", key]) $($await)* ?;
                $crate::reply::check(v)
            }

            /// LENGTH: the value's length, `None` for a missing key.
            pub $($async)* fn length(&mut self, key: &[u8]) -> $crate::Result<Option<u64>> {
                let v = self.call(&[b"LENGTH", key]) $($await)* ?;
                $crate::reply::opt_count("LENGTH", v)
            }

            /// KEYTIME: when the key was last written, `None` for a missing key.
            pub $($async)* fn keytime(&mut self, key: &[u8]) -> $crate::Result<Option<u64>> {
                let v = self.call(&[b"KEYTIME", key]) $($await)* ?;
                $crate::reply::opt_count("KEYTIME", v)
            }

            /// GETs pipelined: one result per key, in order (an `Err` inside is that key's
            /// refusal; the outer one broke the connection).
            pub $($async)* fn get_many<K: AsRef<[u8]>>(
                &mut self,
                keys: &[K],
            ) -> $crate::Result<Vec<$crate::Result<Option<bytes::Bytes>>>> {
                let mut p = $crate::Pipeline::new();
                for k in keys {
                    p.get(k.as_ref());
                }
                let v = self.pipeline(&p) $($await)* ?;
                Ok(v.into_iter().map($crate::reply::get).collect())
            }

            /// SETs pipelined: one result per pair, in order (see [`Client::set`]).
            pub $($async)* fn set_many<K: AsRef<[u8]>, V: AsRef<[u8]>>(
                &mut self,
                pairs: &[(K, V)],
            ) -> $crate::Result<Vec<$crate::Result<bool>>> {
                let mut p = $crate::Pipeline::new();
                for (k, v) in pairs {
                    p.set(k.as_ref(), v.as_ref());
                }
                let v = self.pipeline(&p) $($await)* ?;
                Ok(v.into_iter().map($crate::reply::set).collect())
            }

            /// One SCAN or RSCAN page after `cursor` (`None`: from the start); `None` past
            /// the end.
            pub $($async)* fn scan_page(
                &mut self,
                dir: $crate::Direction,
                cursor: Option<&[u8]>,
            ) -> $crate::Result<Option<$crate::ScanPage>> {
                let v = self.call(&$crate::scan::request(dir, cursor)) $($await)* ?;
                $crate::scan::parse_page(dir, v)
            }

            /// DBSIZE: live keys in the current namespace.
            pub $($async)* fn dbsize(&mut self) -> $crate::Result<u64> {
                let v = self.call(&[b"DBSIZE"]) $($await)* ?;
                $crate::reply::count("DBSIZE", v)
            }

            /// INFO: the server's `key: value` text.
            pub $($async)* fn info(&mut self) -> $crate::Result<String> {
                let v = self.call(&[b"INFO"]) $($await)* ?;
                $crate::reply::text("INFO", v)
            }

            /// TIME: the server's clock (seconds, microseconds).
            pub $($async)* fn time(&mut self) -> $crate::Result<(u64, u32)> {
                let v = self.call(&[b"TIME"]) $($await)* ?;
                $crate::reply::time(v)
            }

            /// NSINFO, parsed; `None` when the namespace does not exist.
            pub $($async)* fn nsinfo(&mut self, ns: &str) -> $crate::Result<Option<$crate::NsInfo>> {
                let v = self.call(&[b"NSINFO", ns.as_bytes()]) $($await)* ?;
                $crate::nsinfo::parse_reply(v)
            }

            /// NSLIST: every namespace (`default` included).
            pub $($async)* fn nslist(&mut self) -> $crate::Result<Vec<String>> {
                let v = self.call(&[b"NSLIST"]) $($await)* ?;
                $crate::reply::names(v)
            }

            /// NSNEW (admin).
            pub $($async)* fn nsnew(&mut self, ns: &str) -> $crate::Result<()> {
                let v = self.call(&[b"NSNEW", ns.as_bytes()]) $($await)* ?;
                $crate::reply::done("NSNEW", v)
            }

            /// NSDEL (admin).
            pub $($async)* fn nsdel(&mut self, ns: &str) -> $crate::Result<()> {
                let v = self.call(&[b"NSDEL", ns.as_bytes()]) $($await)* ?;
                $crate::reply::done("NSDEL", v)
            }

            /// NSSET (admin): `maxsize`, `password`, `public`, `worm`, `mode`, `lock`,
            /// `freeze`. Errors name the property, never the value.
            pub $($async)* fn nsset(&mut self, ns: &str, prop: &str, value: &str) -> $crate::Result<()> {
                let args = [b"NSSET".as_slice(), ns.as_bytes(), prop.as_bytes(), value.as_bytes()];
                let v = self.call(&args) $($await)* ?;
                $crate::reply::done("NSSET", v)
            }

            /// FLUSH: empties the current namespace (private, with a password).
            pub $($async)* fn flush(&mut self) -> $crate::Result<()> {
                let v = self.call(&[b"FLUSH"]) $($await)* ?;
                $crate::reply::done("FLUSH", v)
            }

            /// NSJUMP (admin): starts new data and index files.
            pub $($async)* fn nsjump(&mut self) -> $crate::Result<()> {
                let v = self.call(&[b"NSJUMP"]) $($await)* ?;
                $crate::reply::done("NSJUMP", v)
            }

            /// COMPACT (admin, zdb): reclaims dead space of `ns` (or the current one);
            /// returns the server's summary. Large namespaces may need a longer timeout
            /// ([`Client::set_timeout`]).
            pub $($async)* fn compact(&mut self, ns: Option<&str>) -> $crate::Result<String> {
                let mut args: Vec<&[u8]> = vec![b"COMPACT"];
                args.extend(ns.map(str::as_bytes));
                let v = self.call(&args) $($await)* ?;
                $crate::reply::status("COMPACT", v)
            }

            /// NSCHECK (admin, zdb): verifies every entry; returns the report.
            pub $($async)* fn nscheck(&mut self, ns: Option<&str>) -> $crate::Result<String> {
                let mut args: Vec<&[u8]> = vec![b"NSCHECK"];
                args.extend(ns.map(str::as_bytes));
                let v = self.call(&args) $($await)* ?;
                $crate::reply::text("NSCHECK", v)
            }

            /// SELECT with the password sent as is; kept for reconnects.
            pub $($async)* fn select(&mut self, ns: &str, password: Option<&str>) -> $crate::Result<()> {
                self.select_with(ns, password, $crate::AuthMethod::Plain) $($await)*
            }

            /// SELECT proving the password through the SECURE challenge; kept for reconnects.
            pub $($async)* fn select_secure(&mut self, ns: &str, password: &str) -> $crate::Result<()> {
                self.select_with(ns, Some(password), $crate::AuthMethod::Secure) $($await)*
            }

            $($async)* fn select_with(
                &mut self,
                ns: &str,
                password: Option<&str>,
                method: $crate::AuthMethod,
            ) -> $crate::Result<()> {
                let s = $crate::handshake::Session {
                    admin: None,
                    select: Some((ns.to_string(), password.map($crate::Secret::new), method)),
                };
                self.login(&s) $($await)* ?;
                self.session.select = s.select;
                Ok(())
            }

            /// AUTH as admin with the password sent as is; kept for reconnects.
            pub $($async)* fn auth(&mut self, password: &str) -> $crate::Result<()> {
                self.auth_with(password, $crate::AuthMethod::Plain) $($await)*
            }

            /// AUTH as admin through the SECURE challenge; kept for reconnects.
            pub $($async)* fn auth_secure(&mut self, password: &str) -> $crate::Result<()> {
                self.auth_with(password, $crate::AuthMethod::Secure) $($await)*
            }

            $($async)* fn auth_with(&mut self, password: &str, method: $crate::AuthMethod) -> $crate::Result<()> {
                let s = $crate::handshake::Session {
                    admin: Some(($crate::Secret::new(password), method)),
                    select: None,
                };
                self.login(&s) $($await)* ?;
                self.session.admin = s.admin;
                Ok(())
            }
        }
    };
}

pub(crate) use commands;
