# Writes the hand-written fixtures below as .eml files. Kept beside them so
# a reader sees every message's source in one place; run: python3 gen.py
import os, base64
H = "MIME-Version: 1.0\r\n"
def msg(kind, name, frm, subject, body, html=False, to="ana.silva@example.com", extra="", attach=None, date="Tue, 14 Oct 2025 09:12:44 +0000", mid=None):
    mid = mid or "<%s.%s@%s>" % (abs(hash(name)) % 10**9, "m", frm.split("@")[-1].rstrip(">"))
    head = "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\n%s%s" % (frm, to, subject, date, mid, extra, H)
    ctype = "text/html" if html else "text/plain"
    if attach:
        fn, ct, data = attach
        out = head + 'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n--b1\r\nContent-Type: %s; name="%s"\r\nContent-Disposition: attachment; filename="%s"\r\nContent-Transfer-Encoding: base64\r\n\r\n%s\r\n--b1--\r\n' % (ctype, body, ct, fn, fn, base64.encodebytes(data.encode() if isinstance(data, str) else data).decode().replace("\n", "\r\n"))
    else:
        out = head + "Content-Type: %s; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n" % (ctype, body)
    os.makedirs(kind, exist_ok=True)
    open(os.path.join(kind, name + ".eml"), "w", newline="").write(out.replace("\r\n", "\n").replace("\n", "\r\n"))

P = "phish"
msg(P, "pt-itau-bloqueio", '"Itaú Unibanco" <avisos@itau-seguranca-digital.com>', "Aviso: sua conta foi bloqueada",
 '<html><body><p>Prezado(a) cliente,</p><p>Identificamos <b>atividade suspeita</b> em seu acesso. Por segurança, sua conta foi bloqueada.</p><p>Para evitar o cancelamento definitivo, <a href="https://itau-regularizacao.web.app/login">atualize seus dados</a> nas próximas 24 horas.</p><p>Atenciosamente,<br>Central de Segurança Itaú</p></body></html>', html=True)
msg(P, "pt-correios-taxa", 'Correios <rastreamento@correios-entregas.info>', "Sua encomenda está retida - pagamento pendente",
 'Olá,\n\nSua encomenda BR738201455BR está retida em nosso centro de distribuição.\nPara liberar a entrega é necessário pagar a taxa alfandegária de R$ 47,90.\n\nPague agora: https://bit.ly/correios-liberar-br\n\nCaso o pagamento não seja efetuado em até 48 horas, o objeto será devolvido ao remetente.\n\nCorreios')
msg(P, "pt-caixa-senha", '"Caixa Econômica Federal" <noreply@caixa-atendimento.net>', "Última notificação: atualize seu cadastro",
 '<p>Caro cliente CAIXA,</p><p>Esta é a <b>última notificação</b>. Seu cadastro está desatualizado e seu acesso ao Internet Banking será suspenso.</p><p><a href="http://189.44.12.7/caixa/atualizar">Clique aqui e confirme seus dados</a></p><p>Digite sua senha de 6 dígitos para validar.</p>', html=True)
msg(P, "pt-receita-restituicao", '"Receita Federal" <restituicao@receita-gov-br.org>', "Restituição do IR 2025 disponível - confirme seus dados",
 'Prezado contribuinte,\n\nSua restituição do Imposto de Renda no valor de R$ 2.318,44 está disponível.\nPara receber, confirme seus dados bancários no portal abaixo em até 24 horas:\n\nhttps://restituicao-receita.pages.dev/consulta\n\nReceita Federal do Brasil')
msg(P, "pt-ctt-pt", '"CTT Expresso" <info@ctt-pt-encomendas.com>', "A sua encomenda aguarda pagamento", 
 '<p>Caro cliente,</p><p>Não foi possível entregar a sua encomenda porque existe uma taxa de entrega de 1,99 EUR por pagar.</p><p><a href="https://cutt.ly/ctt-pagamento">Pagar a taxa</a></p><p>Sem o pagamento em 48 horas a encomenda será devolvida.</p>', html=True)
msg(P, "pt-microsoft-caixa", '"Equipe Microsoft" <suporte@mlcrosoft-365.com>', "Sua caixa de correio está cheia",
 '<p>Olá ana.silva@example.com,</p><p>Sua caixa de correio atingiu o limite de armazenamento. Novas mensagens serão rejeitadas.</p><p><a href="https://microsoft-365-storage.netlify.app/?u=ana.silva@example.com">Verifique sua conta</a> para liberar espaço gratuito.</p><p>Equipe Microsoft 365</p>', html=True)
msg(P, "es-bbva-bloqueo", '"BBVA" <seguridad@bbva-clientes-online.com>', "Su cuenta ha sido bloqueada temporalmente",
 '<p>Estimado cliente:</p><p>Hemos detectado un <b>acceso no autorizado</b> a su banca online. Su cuenta ha sido bloqueada por seguridad.</p><p>Para desbloquear su cuenta, <a href="https://bbva-verificacion.weebly.com">confirme sus datos</a> en las próximas 24 horas.</p><p>Atentamente, BBVA</p>', html=True)
msg(P, "es-correos-paquete", 'Correos <notificaciones@correos-envio.es.tracking-pkg.com>', "Su paquete está retenido en aduana",
 'Estimado cliente,\n\nSu paquete con número de seguimiento ES4829117 está retenido. Debe abonar las tasas de aduana (2,99 EUR) para completar la entrega.\n\nPague aquí: https://tinyurl.com/correos-pago-es\n\nSi no se recibe el pago, el paquete será devuelto.\nCorreos')
msg(P, "es-agencia-tributaria", '"Agencia Tributaria" <notificaciones@agenciatributaria-reembolso.com>', "Reembolso de impuestos pendiente",
 '<p>Estimado contribuyente,</p><p>Tras los últimos cálculos de su actividad fiscal, tiene derecho a un reembolso de 412,50 EUR.</p><p><a href="https://aeat-reembolso.vercel.app/form">Acceda a su cuenta</a> y confirme sus datos para recibir el reembolso.</p>', html=True)
msg(P, "es-netflix", '"Netflix" <info@netflix-soporte-cuentas.com>', "Actualice su método de pago",
 '<p>Hola,</p><p>No pudimos procesar el pago de su suscripción. Su cuenta será suspendida si no actualiza sus datos.</p><p><a href="https://nettflix.com/cuenta/pago">Actualizar ahora</a></p><p>El equipo de Netflix</p>', html=True)
msg(P, "en-m365-password", '"Microsoft 365" <no-reply@office365-notifications.com>', "Password expires today - action required",
 '<html><body><p>Your password for ana.silva@example.com expires today.</p><p>To keep using your current password, <a href="https://login-microsoftonline.verify-acct.com/keep">confirm your password</a> now. Failure to comply will result in your account being locked.</p><p>Microsoft account team</p></body></html>', html=True)
msg(P, "en-docusign", '"DocuSign" <dse@docusign-sign.net>', "Invoice #INV-20931 completed - review document",
 '<p>You have received a document to review and sign.</p><p><a href="https://storage-docs.pages.dev/sign?id=20931">REVIEW DOCUMENT</a></p><p>Please sign in to your account to view the document within 48 hours.</p>', html=True)
msg(P, "en-paypal-limited", '"PayPal" <service@paypal.com.account-review.co>', "Your account has been limited",
 'Dear customer,\n\nWe noticed unusual activity in your PayPal account. Your account has been limited until you verify your identity.\n\nRestore your account: http://paypal.com.account-review.co/restore\n\nPayPal')
msg(P, "en-dhl-html-attach", '"DHL Express" <noreply@dhl-express-delivery.org>', "DHL Shipment Notification: AWB 7731092",
 'Dear customer,\n\nYour parcel could not be delivered. Please open the attached delivery document and confirm your address to reschedule.\n\nDHL Express', attach=("DHL_AWB_7731092.html", "text/html", '<html><body><form action="https://dhl-redelivery.000webhostapp.com/post.php" method="post"><input name="email"><input type="password" name="pass"></form></body></html>'))
msg(P, "en-wallet", '"MetaMask" <support@metamask-wallet-verify.com>', "Urgent: verify your wallet",
 '<p>Due to a security upgrade, all wallets must be verified. Unverified wallets will be permanently deleted within 24 hours.</p><p><a href="https://metamask-verify.ipfs.dweb.link/">Verify your wallet</a></p>', html=True)
msg(P, "en-apple-homoglyph", '"Apple Support" <support@appleid-security-alerts.com>', "Your Аpple ID has been locked",
 'Dear customer,\n\nYour Аpple ID has been locked due to suspicious activity. Verify your identity to unlock your account:\n\nhttps://appleid-unlock.glitch.me/\n\nApple Support')
msg(P, "fr-laposte-colis", '"La Poste" <service@laposte-suivi-colis.fr.livraison-fr.com>', "Votre colis est en attente de livraison",
 '<p>Bonjour,</p><p>Votre colis n° 6A19284736 est en attente. Des frais de livraison de 2,49 EUR restent à régler.</p><p><a href="https://rb.gy/laposte-frais">Régler les frais</a> sous 48 heures, sinon le colis sera renvoyé à l\'expéditeur.</p><p>La Poste</p>', html=True)
msg(P, "fr-impots", '"Impots.gouv" <remboursement@impots-gouv-fr.info>', "Avis de remboursement d'impôt",
 'Madame, Monsieur,\n\nAprès calcul de votre taxe annuelle, vous pouvez bénéficier d\'un remboursement de 318,20 EUR.\nVeuillez confirmer vos informations bancaires avant le 20/10 :\n\nhttps://impots-remboursement.firebaseapp.com/\n\nDirection générale des Finances publiques')
msg(P, "fr-credit-agricole", '"Crédit Agricole" <alerte@ca-securite-client.com>', "Votre compte a été suspendu",
 '<p>Cher client,</p><p>Suite à une activité inhabituelle, votre compte a été suspendu.</p><p><a href="https://ca-clients.mystrikingly.com">Vérifiez votre compte</a> pour le réactiver.</p><p>Service Sécurité</p>', html=True)
msg(P, "de-sparkasse", '"Sparkasse" <kundenservice@sparkasse-sicherheit.info>', "Wichtig: Ihr Konto wurde eingeschränkt",
 '<p>Sehr geehrte Kundin, sehr geehrter Kunde,</p><p>aufgrund einer <b>ungewöhnlichen Aktivität</b> wurde Ihr Konto eingeschränkt.</p><p>Bitte <a href="https://sparkasse-pushtan.webflow.io/">bestätigen Sie Ihre Daten</a> innerhalb von 24 Stunden, sonst wird Ihr Online-Banking gesperrt.</p><p>Ihre Sparkasse</p>', html=True)
msg(P, "de-dhl-zoll", '"DHL Paket" <info@dhl-paket-zustellung.net>', "Ihr Paket wird zurückgehalten",
 'Hallo,\n\nIhr Paket konnte nicht zugestellt werden. Für die Zustellung fällt eine Zollgebühr von 1,79 EUR an.\n\nJetzt bezahlen: https://is.gd/dhl-zoll\n\nZustellung fehlgeschlagen. Das Paket wird nach 3 Tagen an den Absender zurückgeschickt.')
msg(P, "de-microsoft-onenote", '"Microsoft Teams" <teams@teams-share.info>', "Neues Dokument wurde mit Ihnen geteilt",
 'Hallo,\n\nein Kollege hat ein Dokument mit Ihnen geteilt. Öffnen Sie die angehängte Datei, um es anzusehen.\n', attach=("Rechnung_Oktober.one", "application/octet-stream", "ONENOTEFILE"))
msg(P, "it-poste", '"Poste Italiane" <avvisi@posteitaliane-sicurezza.com>', "Il tuo conto è stato sospeso",
 '<p>Gentile cliente,</p><p>abbiamo rilevato un accesso non autorizzato. Il tuo conto è stato sospeso.</p><p><a href="https://poste-sblocco.web.app">Verifica i tuoi dati</a> entro 24 ore per riattivarlo.</p><p>Poste Italiane</p>', html=True)
msg(P, "it-intesa", '"Intesa Sanpaolo" <notifica@intesa-sanpaolo-clienti.net>', "Ultimo avviso: aggiorna i tuoi dati",
 'Gentile cliente,\n\nquesto è l\'ultimo avviso. Aggiorna i tuoi dati entro 48 ore per evitare il blocco dell\'account.\n\nhttps://t.ly/intesa-aggiorna\n\nIntesa Sanpaolo')
msg(P, "it-agenzia-entrate", '"Agenzia delle Entrate" <rimborsi@agenziaentrate-rimborso.com>', "Rimborso fiscale",
 '<p>Gentile contribuente,</p><p>risulta un rimborso fiscale di 286,00 EUR a suo favore. <a href="https://entrate-rimborso.netlify.app">Accedi al tuo account</a> e conferma i tuoi dati entro 24 ore.</p>', html=True)
msg(P, "en-wetransfer-zip", '"WeTransfer" <noreply@we-transfer-files.com>', "You received files via WeTransfer",
 'Hello,\n\nYou have received 2 files. The archive is encrypted for your security.\nPassword: 8841\n\nOpen the attachment to view the documents.\n', attach=("documents.zip", "application/zip", "PK\x03\x04\x14\x00\x01\x00 encrypted"))

# Added after the lists grew to nl and pl and to the public bodies and parcel
# services beyond the first six languages' banks (and a brand's name in a
# hyphenated subdomain label): written blind, before the lists were extended.
msg(P, "es-dgt-multa", '"DGT - Dirección General de Tráfico" <notificaciones@dgt-multas-pago.com>', "Notificación de multa pendiente de pago - Expediente 2025/88312",
 'Estimado/a conductor/a:\n\nLe informamos que tiene una sanción de tráfico pendiente de pago por exceso de velocidad.\n\nImporte: 100,00 EUR (50,00 EUR con descuento por pronto pago)\nFecha límite: 48 horas\n\nPara evitar el recargo y la retirada de puntos, realice el pago en el siguiente enlace:\nhttps://dgt-multas-pago.com/pago/?exp=2025-88312\n\nDirección General de Tráfico', mid="<dgt.88312@dgt-multas-pago.com>")
msg(P, "it-inps", '"INPS" <comunicazioni@inps-rimborsi.it.ewbx.net>', "Rimborso INPS: aggiornamento dati richiesto",
 "<html><body><p>Gentile utente,</p><p>a seguito dei controlli effettuati, risulta a suo favore un rimborso di <b>€ 460,00</b>. Per ricevere l'accredito è necessario aggiornare i dati del conto corrente entro 72 ore.</p><p><a href=\"https://inps-rimborsi.it.ewbx.net/login\">Accedi con SPID</a></p><p>Istituto Nazionale Previdenza Sociale</p></body></html>", html=True, mid="<inps.460@ewbx.net>")
msg(P, "fr-ameli", '"Assurance Maladie" <ne-pas-repondre@ameli-remboursement.fr.bvlx.com>', "Remboursement en attente : mettez à jour vos informations",
 "<html><body><p>Cher(e) assuré(e),</p><p>Vous êtes admissible à recevoir un remboursement de <b>239,87 €</b>. Vous devez mettre à jour vos coordonnées bancaires sous 48 heures.</p><p><a href=\"https://ameli-remboursement.fr.bvlx.com/espace-assure/\">Accéder à mon compte ameli</a></p><p>L'Assurance Maladie</p></body></html>", html=True, mid="<ameli.23987@bvlx.com>")
msg(P, "nl-ing", '"ING Bank" <service@ing-verificatie.nl.rt83.xyz>', "Belangrijk: uw betaalpas verloopt",
 'Beste klant,\n\nUw huidige betaalpas verloopt binnenkort. Om te voorkomen dat uw rekening wordt geblokkeerd, dient u uw gegevens binnen 24 uur te verifiëren via onderstaande link.\n\nhttps://ing-verificatie.nl.rt83.xyz/mijn-ing/\n\nMet vriendelijke groet,\nING Klantenservice', mid="<ing.pas@rt83.xyz>")
msg(P, "pl-inpost", '"InPost" <powiadomienia@inpost-doplata.pl>', "Twoja paczka czeka na dopłatę 1,99 zł",
 'Dzień dobry,\n\nTwoja przesyłka nie może zostać dostarczona z powodu nieopłaconej opłaty celnej w wysokości 1,99 zł.\n\nOpłać przesyłkę w ciągu 24 godzin: https://inpost-paczka.top/oplata\n\nZespół InPost', mid="<inpost.199@inpost-doplata.pl>")
msg(P, "en-callback-norton", '"Norton LifeLock" <billing.dept8812@gmail.com>', "Your subscription has been renewed - Invoice #NL-883920",
 'Dear Customer,\n\nThank you for renewing your Norton 360 Total Protection subscription. Your account has been charged $399.99.\n\nInvoice No: NL-883920\nAmount: $399.99\n\nIf you did not authorize this renewal or wish to cancel and request a refund, please contact our billing support team within 24 hours at +1 (808) 555-0143.\n\nNorton Billing Team', mid="<nl883920@mail.gmail.com>")
msg(P, "en-bec-giftcards", '"Michael Reynolds" <ceo.michaelreynolds@outlook.com>', "Quick request",
 "Hi,\n\nAre you available? I need you to handle a task for me discreetly. I'm in a meeting and can't talk on the phone.\n\nI need to purchase gift cards for a few clients today as a surprise. Can you get 5 x $200 Apple cards and send me pictures of the codes on the back? I will reimburse you by end of day.\n\nMichael\nSent from my iPhone", mid="<bec.1@outlook.com>")
msg(P, "pt-bec-cartoes", '"Ricardo Almeida" <ricardo.almeida.diretoria@gmail.com>', "Preciso de um favor",
 "Olá Ana,\n\nVocê está no escritório? Estou numa reunião o dia todo e não posso atender chamadas.\n\nPreciso comprar cartões presente para alguns clientes ainda hoje, é uma surpresa. Compre 4 cartões de R$ 500 e me envie as fotos dos códigos por este e-mail.\n\nDepois eu te reembolso.\n\nRicardo\nEnviado do meu iPhone", mid="<CAK8r2bec.2@mail.gmail.com>")
msg(P, "de-bec-bankverbindung", '"Müller Metallbau GmbH" <buchhaltung@mueller-metallbau.de>', "Rechnung 2025-118: neue Bankverbindung",
 "Sehr geehrte Damen und Herren,\n\naufgrund einer laufenden Prüfung hat sich unsere Bankverbindung geändert. Bitte verwenden Sie ab sofort nur noch das folgende Konto:\n\nIBAN: DE89 3704 0044 0532 0130 00\nBIC: COBADEFFXXX\n\nDringende Zahlung: Bitte überweisen Sie den offenen Betrag der Rechnung 2025-118 noch heute und senden Sie uns die Bestätigung per Antwort auf diese E-Mail.\n\nMit freundlichen Grüßen\nBuchhaltung\nMüller Metallbau GmbH",
 extra="Reply-To: mueller.buchhaltung@gmx.de\r\n", mid="<20251014.118@mueller-metallbau.de>")
msg(P, "en-sextortion", '"Ana Silva" <ana.silva@example.com>', "Security alert: your account was compromised",
 "Hello!\n\nI am a hacker who has access to your operating system. I infected your device with my malware months ago when you visited adult websites, and I recorded a video of you through your webcam.\n\nWith one click I can send this video to all your contacts.\n\nTransfer 1450 USD in Bitcoin to my wallet: bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh\n\nYou have 48 hours from the moment you open this email. After the payment I will delete the video and you will never hear from me again.", mid="<8821.ext@example.com>")
msg(P, "en-voicemail-webapp", '"Voice Message" <voicemail@pbx-notify.net>', "New voicemail from +1 (312) 555-0198 (0:42)",
 '<p>You have received a new voicemail.</p><p>From: +1 (312) 555-0198<br>Duration: 0:42<br>Received: Tuesday, October 14</p><p><a href="https://listen-vm.web.app/play?id=ana.silva@example.com">Play message</a></p>', html=True, mid="<vm.0198@pbx-notify.net>")
msg(P, "es-factura-pagesdev", '"Facturación" <facturacion@distribuciones-levante.es>', "Factura pendiente de pago Nº 2025-0931",
 '<p>Buenos días,</p><p>Adjuntamos enlace a la factura Nº 2025-0931 pendiente de pago. Rogamos realice el pago a la mayor brevedad.</p><p><a href="https://factura-0931.pages.dev/ver">Ver factura</a></p><p>Un saludo,<br>Departamento de Facturación</p>', html=True, mid="<f0931.1@distribuciones-levante.es>")
msg(P, "pt-investimento", '"Carlos Mendes" <carlos.mendes.invest@outlook.com>', "Oportunidade de investimento com retorno garantido",
 "Olá,\n\nTenho uma oportunidade exclusiva de investimento em criptomoedas com retorno garantido de 30% ao mês. Já ajudei centenas de pessoas a mudarem de vida.\n\nVagas limitadas! Responda este e-mail hoje para garantir sua vaga com um investimento inicial de apenas R$ 500.\n\nAbraço,\nCarlos", mid="<inv.30@outlook.com>")
msg(P, "es-loteria", '"Lotería Internacional" <premios@loteria-internacional.org>', "¡Felicidades! Usted ha ganado 850.000 EUR",
 "Estimado ganador,\n\nNos complace informarle que su dirección de correo electrónico ha sido seleccionada en nuestro sorteo anual y usted ha ganado 850.000 EUR.\n\nPara reclamar su premio, envíe su nombre completo, dirección, número de teléfono y una copia de su documento de identidad a nuestro agente de pagos.\n\nAtentamente,\nDr. Manuel Ortega", extra="Reply-To: agente.pagos.loteria@gmail.com\r\n", mid="<lot.850@loteria-internacional.org>")
msg(P, "fr-heritage", '"Maître Jean Dupont" <cabinet.dupont.notaire@yahoo.fr>', "Héritage non réclamé",
 "Bonjour,\n\nJe suis Maître Jean Dupont, notaire. Un de mes clients, décédé sans héritier, porte le même nom de famille que vous. Il a laissé la somme de 4.500.000 EUR sur un compte bancaire.\n\nJe vous propose de vous présenter comme bénéficiaire. Merci de me répondre avec vos coordonnées complètes pour plus de détails.\n\nCordialement,\nMe Jean Dupont", mid="<her.45@yahoo.fr>")
msg(P, "en-mailbox-quota", '"Mail Administrator" <postmaster@mail-admin-center.com>', "Mailbox quota exceeded: 98% used",
 '<p>Dear ana.silva,</p><p>Your mailbox has exceeded its storage limit. You may not be able to send or receive new messages until you re-validate your mailbox.</p><p><a href="https://mailbox-upgrade.framer.website/">Re-validate mailbox</a></p><p>System Administrator</p>', html=True, mid="<quota.98@mail-admin-center.com>")
msg(P, "es-callback-renovacion", '"Soporte de Facturación" <facturacion.soporte2291@gmail.com>', "Confirmación de pedido #ES-55120",
 "Estimado cliente:\n\nGracias por su compra. Su suscripción ha sido renovada por 3 años y se ha cargado en su cuenta el importe de 389,99 EUR.\n\nNúmero de pedido: ES-55120\nImporte: 389,99 EUR\n\nSi no reconoce esta compra, llame a nuestro departamento de reembolsos al +34 900 555 017 en las próximas 24 horas.\n\nAtentamente,\nServicio de Atención al Cliente", mid="<es55120@mail.gmail.com>")
msg(P, "pt-boleto", '"Financeiro" <financeiro@cobrancas-online.net>', "Boleto em atraso - evite protesto",
 '<p>Prezado(a),</p><p>Identificamos um boleto em aberto em seu nome. Para evitar o protesto e a negativação do seu CPF, efetue o pagamento até hoje.</p><p><a href="https://boleto-2via.netlify.app/pagar">Emitir 2ª via do boleto</a></p>', html=True, mid="<bol.2via@cobrancas-online.net>")
msg(P, "de-paket-adresse", '"Paketdienst" <service@paket-zustellung24.com>', "Zustellversuch fehlgeschlagen",
 "Guten Tag,\n\nwir konnten Ihr Paket heute nicht zustellen. Bitte bestätigen Sie Ihre Lieferadresse und zahlen Sie die Nachsendegebühr von 0,99 EUR, damit wir erneut zustellen können.\n\nhttps://paket-24.pages.dev/neu\n\nIhr Paketdienst", mid="<zv.24@paket-zustellung24.com>")
msg(P, "es-buzon-lleno", '"Administrador de correo" <admin@webmail-soporte.com>', "Su cuenta de correo será desactivada",
 '<p>Estimado usuario,</p><p>Su buzón ha superado el límite de almacenamiento. Su cuenta será desactivada en 24 horas si no verifica su cuenta.</p><p><a href="https://verificar-buzon.weebly.com">Verificar cuenta</a></p>', html=True, mid="<buzon.24@webmail-soporte.com>")
msg(P, "en-qr-mfa", '"IT Service Desk" <it-support@northwind-holdings.com>', "Action required: re-authenticate your MFA before it expires",
 '<p>Hello,</p><p>Your multi-factor authentication (MFA) settings expire today. To avoid losing access to your mailbox, scan the QR code below with your phone camera and sign in to your account.</p><p><img src="https://qr-codes.northwind-it-portal.com/mfa.png" width="200" height="200"></p><p>IT Service Desk</p>', html=True, mid="<mfa.qr@northwind-holdings.com>")

A = "ham"
msg(A, "en-microsoft-account", '"Microsoft account team" <account-security-noreply@accountprotection.microsoft.com>', "Microsoft account security info was added",
 '<p>Microsoft account</p><p>Security info was added</p><p>The following security info was recently added to the Microsoft account an***@example.com:</p><p>an***@gmail.com</p><p>If this was you, then you can safely ignore this email.</p><p>If this wasn\'t you, a malicious user has access to your account. Please <a href="https://account.live.com/Activity">review your recent activity</a> and remove it.</p><p>To opt out or change where you receive security notifications, <a href="https://account.live.com/SecurityNotifications/Update">click here</a>.</p><p>Thanks,<br>The Microsoft account team</p>', html=True,
 extra="DKIM-Signature: v=1; a=rsa-sha256; d=accountprotection.microsoft.com; s=selector1; h=from:to:subject; bh=x; b=y\r\n")
msg(A, "pt-bank-newsletter", '"Itaú" <comunicados@itau.com.br>', "Novidades do seu cartão em outubro",
 '<p>Olá, Ana!</p><p>Em outubro, seu cartão Itaú tem cashback em farmácias e descontos em viagens. Confira as condições no app ou no site.</p><p><a href="https://www.itau.com.br/cartoes/beneficios">Ver benefícios</a></p><p>Itaú Unibanco S.A. - Para não receber mais estas mensagens, <a href="https://click.itau.com.br/unsub?id=8841">clique aqui</a>.</p>', html=True,
 extra="Return-Path: <bounce-8841@mail.itau.com.br>\r\nList-Unsubscribe: <https://click.itau.com.br/unsub?id=8841>\r\n")
msg(A, "en-personal-paypal", 'Tom Becker <tom.becker@gmail.com>', "Re: concert tickets",
 'Hi Ana,\n\nI bought the tickets for Saturday. Can you pay me back your share with PayPal when you get a chance? My address is tom.becker@gmail.com, or just use paypal.me/tombecker.\n\nSee you at 8 in front of the venue.\n\nTom')
msg(A, "pt-fatura-empresa", '"EDP Comercial" <faturas@edp.pt>', "A sua fatura de setembro já está disponível",
 'Caro cliente,\n\nSegue a fatura de eletricidade referente a setembro, no valor de 58,32 EUR, com vencimento a 28/10/2025.\nO pagamento por débito direto será efetuado na data de vencimento.\n\nPode consultar o detalhe da fatura na sua área de cliente em https://www.edp.pt/particulares/area-cliente\n\nObrigado,\nEDP Comercial', to="ana.silva@example.com")
msg(A, "en-github-reset", 'GitHub <noreply@github.com>', "[GitHub] Please reset your password",
 'We heard that you lost your GitHub password. Sorry about that!\n\nBut don\'t worry! You can use the following link to reset your password:\n\nhttps://github.com/password_reset/4f2a9c\n\nIf you don\'t use this link within 3 hours, it will expire. To get a new password reset link, visit https://github.com/password_reset\n\nThanks,\nThe GitHub Team')
msg(A, "de-shop-versand", '"Thalia" <service@thalia.de>', "Ihre Bestellung wurde versandt",
 'Guten Tag Frau Silva,\n\nIhre Bestellung 3021-8841 wurde heute an DHL übergeben. Sie können die Sendung hier verfolgen: https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html?piececode=00340434\n\nWir wünschen Ihnen viel Freude mit Ihren Büchern.\n\nIhr Thalia Kundenservice')
msg(A, "en-amazon-shipped", '"Amazon.com" <shipment-tracking@amazon.com>', "Your Amazon.com order has shipped",
 '<p>Hello Ana,</p><p>Your package is on the way and will arrive Thursday, October 16.</p><p><a href="https://www.amazon.com/gp/your-account/order-details?orderID=113-884">Track package</a></p><p>Order #113-8841209-2231</p>', html=True)
msg(A, "es-cita-medica", '"Clínica Dental Sonrisa" <citas@clinicasonrisa.es>', "Recordatorio de su cita",
 'Hola Ana,\n\nLe recordamos su cita el jueves 16 de octubre a las 10:30 con la Dra. Martín.\nSi no puede asistir, por favor avísenos con 24 horas de antelación llamando al 912 345 678.\n\nUn saludo,\nClínica Dental Sonrisa')
msg(A, "it-bolletta", '"Enel Energia" <noreply@enel.it>', "La tua bolletta di ottobre",
 'Gentile cliente,\n\nla bolletta di ottobre è disponibile nella tua area clienti. Importo: 64,10 EUR, scadenza 30/10/2025.\nPuoi consultarla su https://www.enel.it/it/area-clienti\n\nGrazie,\nEnel Energia')
msg(A, "en-mailing-list", 'Lisa Park <lisa.park@fastmail.com>', "Re: [go-nuts] context cancellation in long loops",
 'On Mon, Oct 13, 2025, Ana Silva wrote:\n> Should I check ctx.Err() on every iteration?\n\nOnly if an iteration can take long. A select with a default case costs little, but checking every N items is usually enough.\n\nLisa\n\n-- \nYou received this message because you are subscribed to the Google Groups "golang-nuts" group.\nTo unsubscribe from this group, visit https://groups.google.com/d/optout',
 extra="List-Id: <golang-nuts.googlegroups.com>\r\nReply-To: golang-nuts@googlegroups.com\r\n")
msg(A, "fr-banque-releve", '"BNP Paribas" <noreply@mabanque.bnpparibas>', "Votre relevé de compte est disponible",
 'Bonjour,\n\nVotre relevé de compte du mois de septembre est disponible dans votre espace client, rubrique Mes documents.\n\nCordialement,\nBNP Paribas')
msg(A, "pt-pessoal", 'Marta Costa <marta.costa@sapo.pt>', "Jantar de sábado",
 'Olá Ana!\n\nEntão, está confirmado o jantar de sábado às 20h? Eu levo a sobremesa. Se precisares de boleia diz-me.\n\nBeijinhos,\nMarta')
msg(A, "en-calendar-ics", '"Google Calendar" <calendar-notification@google.com>', "Invitation: Team sync @ Thu Oct 16, 2025 10am",
 'You have been invited to the following event.\n\nTeam sync\nThu Oct 16, 2025 10am - 10:30am (CEST)\nJoining info: https://meet.google.com/abc-defg-hij\n', attach=("invite.ics", "text/calendar", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"))
msg(A, "en-voicemail-pbx", '"Voicemail" <voicemail@pbx.northwind-holdings.com>', "New voicemail from Front Desk (ext. 101), 0:31",
 "You have a new voice message.\n\nFrom: Front Desk (ext. 101)\nDuration: 0:31\nReceived: Tuesday, October 14, 09:10\n\nThe message is attached. You can also listen to it at https://pbx.northwind-holdings.com/voicemail/inbox\n\nNorthwind Holdings phone system", attach=("msg0031.wav", "audio/wav", "RIFF....WAVEfmt "), mid="<vm.101.0031@pbx.northwind-holdings.com>")
msg(A, "en-exchange-newsletter", '"Kraken" <newsletter@email.kraken.com>', "Your October market update",
 '<p>Hi Ana,</p><p>Bitcoin closed September up 4%, and Ethereum staking rewards are now paid weekly. Read our analysts\' view of the quarter ahead.</p><p><a href="https://blog.kraken.com/market-update-october">Read the update</a></p><p>Crypto assets are volatile. Past performance does not guarantee future results.</p><p><a href="https://email.kraken.com/unsubscribe">Unsubscribe</a></p>', html=True, mid="<news.oct@email.kraken.com>")
msg(A, "en-invoice-own-domain", '"Billing" <billing@brightpath-design.com>', "Invoice INV-2210 from Brightpath Design",
 "Hi Ana,\n\nThank you for your business. Your invoice INV-2210 for 1,200.00 EUR is ready, due on 14 November 2025.\n\nView invoice: https://billing.brightpath-design.com/invoices/INV-2210\n\nBest regards,\nBrightpath Design", mid="<inv2210@brightpath-design.com>")
# A sender who knows the reader greets the name, not the address; at a
# firstname.lastname address the two fold to the same words.
msg(A, "en-airline-checkin", '"TAP Air Portugal" <noreply@flytap.com>', "Check-in is now open for your flight to Lisbon",
 '<html><body><p>Dear Ana Silva,</p><p>Online check-in is now open for your flight TP 1353 from London Heathrow to Lisbon on 16 October at 07:15. Booking reference: K7Q2PX.</p><p><a href="https://www.flytap.com/en-gb/check-in?pnr=K7Q2PX">Check in now</a></p><p>Check-in closes 1 hour before departure. Remember to bring your passport or ID card.</p><p>Have a good flight,<br>TAP Air Portugal</p></body></html>', html=True)
# Members of a federation send from their own domains, on one pattern
# (sparkasse-*.de); a public body from below a public suffix.
msg(A, "de-sparkasse-postfach", '"Sparkasse KölnBonn" <noreply@sparkasse-koelnbonn.de>', "Neue Nachricht in Ihrem elektronischen Postfach",
 'Sehr geehrte Frau Silva,\n\nin Ihrem elektronischen Postfach im Online-Banking liegt eine neue Nachricht für Sie bereit: Kontoauszug 10/2025.\n\nBitte melden Sie sich wie gewohnt über www.sparkasse-koelnbonn.de oder die App Sparkasse an.\n\nMit freundlichen Grüßen\nIhre Sparkasse KölnBonn')
msg(A, "en-hmrc-return", 'HMRC <noreply@confirmation.tax.service.gov.uk>', "Your tax return has been received",
 'Dear Ana Silva,\n\nWe have received your Self Assessment tax return for the 2024 to 2025 tax year on 14 October 2025.\n\nYour submission reference is 8H2K9L3M4N.\n\nYou can view your calculation by signing in to your HMRC online account at https://www.gov.uk/log-in-register-hmrc-online-services\n\nFrom HMRC')
# A global brand writes from its country domains.
msg(A, "de-paypal-zahlung", '"PayPal" <service@paypal.de>', "Sie haben eine Zahlung gesendet",
 'Hallo Ana Silva,\n\nSie haben eine Zahlung über 25,00 EUR an Tom Becker gesendet.\n\nEs kann einige Minuten dauern, bis die Transaktion in Ihrem PayPal-Konto angezeigt wird.\n\nTransaktionsdetails: https://www.paypal.com/myaccount/transactions\n\nIhr PayPal-Team')
# Counterfeit pills: a prescription-only medicine offered without the
# prescription, in English and Spanish.
msg(P, "en-pharmacy-no-prescription", '"Canadian Meds Direct" <orders@meds-direct-rx.shop>', "Save 80% on Viagra and Cialis - no prescription needed",
 '<html><body><p>Hello,</p><p>Genuine Viagra, Cialis and Levitra at the lowest prices online. <b>No prescription required</b>, no doctor visit, discreet packaging and free worldwide shipping on orders over $99.</p><p>Also available: Tramadol, Xanax, Ambien.</p><p><a href="https://meds-direct-rx.shop/?ref=8812">Order now and get 10 free pills</a></p><p>To stop receiving these offers, reply REMOVE.</p></body></html>', html=True)
msg(P, "es-farmacia-sin-receta", '"Farmacia Online 24h" <ventas@farmacia-barata24.site>', "Ozempic sin receta: envío en 24 horas",
 'Hola Ana,\n\n¿Quiere perder peso rápido? Ahora puede comprar Ozempic y Wegovy sin receta médica, con envío discreto en 24 horas a toda España.\n\nPrecio especial esta semana: 89 € la pluma.\n\nPida ya: https://farmacia-barata24.site/ozempic\n\nUn saludo,\nFarmacia Online 24h')
# A pharmacy names a medicine, and a prescription it holds.
msg(A, "en-pharmacy-repeat", '"Boots Online Doctor" <noreply@boots.com>', "Your repeat prescription is ready",
 'Hi Ana,\n\nGood news: your repeat prescription (sildenafil 50 mg, 8 tablets) has been approved by our prescriber and is ready to collect at Boots, Oxford Street, from 2pm today.\n\nPlease bring photo ID. You can manage your prescriptions at https://www.boots.com/online/prescriptions\n\nBoots Online Doctor')
# The m365 lure with its link and brand hidden from naive parsers: a
# zero-width space in the display name, the look-alike only in <base href>
# (the link itself relative), the trigger word split by an inline tag.
msg(P, "en-m365-basestriker", '"Micro\u200bsoft 365" <it-notices@mailer-hub.net>', "Password expires today - action required",
 '<html><head><base href="https://login-microsoftonline.verify-acct.com/"></head><body><p>Your pass<span>word</span> for ana.silva@example.com expires today.</p><p>To keep using your current password, <a href="keep">confirm your pass<span>word</span></a> now. Failure to comply will result in your account being locked.</p><p>Microsoft account team</p></body></html>', html=True)
# Chinese and Japanese phish and a Japanese notice: their phrases are
# matched character by character (no spaces between words).
msg(P, "ja-card-riyou", '"三井住友カード" <info@smbc-card-security.xyz>', "【重要】ご利用確認のお願い",
 "三井住友カードをご利用いただきありがとうございます。\n\nお客様のカードに不正利用の可能性があるため、ご利用を一時停止しております。\n24時間以内に下記URLよりご本人確認をお願いいたします。\n\nhttps://smbc-card-check.xyz/login\n\n期限内にご確認いただけない場合、カードのご利用を制限させていただきます。", mid="<smbc.20251014@smbc-card-security.xyz>")
msg(P, "zh-icbc-dongjie", '"中国工商银行" <service@icbc-secure-cn.top>', "您的账户存在异常",
 "尊敬的客户：\n\n系统检测到您的账户存在异常登录，账户已被临时冻结。请在24小时内点击以下链接验证您的身份，否则账户将被永久停用。\n\nhttp://icbc-verify.top/login\n\n中国工商银行", mid="<icbc.20251014@icbc-secure-cn.top>")
msg(A, "ja-login-notice", '"メルカリ" <no-reply@mercari.jp>', "新しい端末からのログインがありました",
 "いつもメルカリをご利用いただきありがとうございます。\n\n新しい端末からログインがありました。\n日時：2025年10月14日 18:12\n端末：iPhone\n\nお心当たりがない場合は、パスワードを変更してください。\nhttps://jp.mercari.com/mypage/settings\n\nメルカリ事務局", mid="<login.20251014@mercari.jp>")
