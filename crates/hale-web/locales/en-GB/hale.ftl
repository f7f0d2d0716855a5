# Hale's words, in plain English (NHS content style: short sentences, "you", no jargon).
# Every string a person sees is here, so that other languages can follow.

service-name = Hale
skip-link = Skip to main content
account-nav = Account
nav-your-record = Your record
nav-sessions = Where you're signed in
nav-sign-in = Sign in
nav-sign-out = Sign out
footer-about = Hale is a personal health record that you own and control.
footer-links = Support links
error-summary-title = There is a problem
error-prefix = Error:
password-show = Show
password-hide = Hide
password-show-label = Show password
password-hide-label = Hide password
password-shown = Your password is visible
password-hidden = Your password is hidden
continue = Continue
page-title = { $page } - Hale

# Start
start-title = Your health record, in your hands
start-lead = Keep your health information in one place, add your own, and decide who can see it.
start-points-title = With Hale you can:
start-point-see = see your health information from your GP, hospital and other services
start-point-add = add your own notes, measurements and readings from your watch or phone
start-point-share = choose who can see your record, and see who has looked
start-create = Create an account
start-have-account = Already have an account?
start-sign-in = Sign in

# Sign up
sign-up-title = Create an account
sign-up-name = Your full name
sign-up-email = Email address
sign-up-email-hint = We'll send you a link to confirm it.
sign-up-password = Create a password
sign-up-password-hint = Use at least 10 characters. A few unrelated words make a strong password that is easy to remember.
sign-up-confirm = Type your password again
sign-up-submit = Create account
check-email-title = Check your email
check-email-body = We've sent a link to the email address you gave us. Open it within 24 hours to finish creating your account.
check-email-spam = If you cannot find the email, check your spam or junk folder.
verified-title = Email address confirmed
verified-body = You can now sign in to Hale.
link-invalid-title = This link does not work
link-invalid-body = The link may have expired, or it may have been used already.
link-invalid-next = Try signing in. If your account is not confirmed yet, you can create it again.

# Sign in
sign-in-title = Sign in to Hale
sign-in-email = Email address
sign-in-password = Password
sign-in-submit = Sign in
sign-in-no-account = No account yet?
code-title = Enter your security code
code-body = Open the authenticator app on your phone and enter the 6-digit code it shows for Hale.
code-label = Security code
code-hint = For example, 123456
code-submit = Continue
code-use-recovery = I cannot use my authenticator app
recovery-title = Enter a recovery code
recovery-body = Use one of the recovery codes you saved when you set up your authenticator app. Each code works once.
recovery-label = Recovery code
recovery-hint = For example, abcde-fghjk
recovery-submit = Continue

# Authenticator set-up
totp-setup-title = Set up your authenticator app
totp-setup-why = To keep your health information safe, you need a second way to prove it's you each time you sign in.
totp-setup-step-app = Install an authenticator app on your phone, if you do not have one.
totp-setup-step-scan = In the app, add an account and scan this QR code.
totp-setup-qr-label = QR code to scan with your authenticator app
totp-setup-cannot-scan = I cannot scan the QR code
totp-setup-key = Enter this key in your app instead:
totp-setup-step-code = Enter the 6-digit code the app shows.
totp-setup-submit = Set up authenticator
recovery-codes-title = Save your recovery codes
recovery-codes-body = If you lose your phone, you can use one of these codes to sign in. Each code works once.
recovery-codes-warning = Store them somewhere safe, such as a password manager or printed on paper. You will not be able to see them again.
recovery-codes-continue = I have saved my codes

# Record
record-title = Your record
record-level-p0 = Your identity has not been checked. You can keep your own notes and readings. To see information from health and care services, you need to prove who you are.
record-level-p9 = Your identity has been checked.

# Sessions
sessions-title = Where you're signed in
sessions-body = These are the devices signed in to your account. If you do not recognise one, sign it out and change your password.
sessions-device = Device
sessions-device-desc = { $browser } on { $system }
sessions-unknown-browser = A browser
sessions-unknown-system = an unknown device
sessions-signed-in = Signed in
sessions-last-used = Last used
sessions-this-device = This device
sessions-end = Sign out
sessions-end-label = Sign out { $device }
sessions-end-all = Sign out everywhere
sessions-end-all-hint = This signs you out on every device, including this one.

# Errors on pages
not-found-title = Page not found
not-found-body = If you typed the web address, check it is correct. If you pasted the web address, check you copied the entire address.
server-error-title = Sorry, there is a problem with the service
server-error-body = Try again later.
error-reference = Reference: { $id }
form-expired-title = This form has expired
form-expired-body = For your security, forms stop working after a while. Go back, refresh the page and try again.
too-many-title = Too many attempts
too-many-body = For your security, you need to wait before trying again. Try again in { $minutes ->
    [one] 1 minute
   *[other] { $minutes } minutes
}.

# Form errors
error-name-missing = Enter your full name
error-email-invalid = Enter an email address in the correct format, like name@example.com
error-password-too-short = Your password must be at least 10 characters
error-password-too-long = Your password must be 256 characters or fewer
error-password-too-easy = Your password is too easy to guess. Try a few unrelated words, or avoid common words, names and patterns
error-passwords-differ = The passwords do not match
error-sign-in-failed = The email address or password is not right
error-email-not-verified = Confirm your email address first, using the link we sent you
error-code-wrong = The security code is not right, or it has expired. Enter the newest code from your app
error-recovery-code-wrong = The recovery code is not right, or it has been used
error-link-invalid = This link has expired or has been used

# Dates
date-time = { $day } { $month } { $year } at { $time }
month-1 = January
month-2 = February
month-3 = March
month-4 = April
month-5 = May
month-6 = June
month-7 = July
month-8 = August
month-9 = September
month-10 = October
month-11 = November
month-12 = December

# Password reset
sign-in-forgot = Forgotten your password?
forgot-title = Reset your password
forgot-body = Enter the email address you use for Hale. If it has an account, we'll send you a link to choose a new password.
forgot-submit = Send link
forgot-sent-title = Check your email
forgot-sent-body = If that address has a Hale account, we've sent it a link. Open it within 1 hour to choose a new password.
reset-title = Choose a new password
reset-body = Choosing a new password signs you out on every device.
reset-password = New password
reset-confirm = Type your new password again
reset-submit = Save new password
reset-done-title = Your password has been changed
reset-done-body = You have been signed out on every device. Sign in with your new password.

# The record by category
category-conditions = Conditions
category-medicines = Medicines
category-allergies = Allergies
category-test-results = Test results
category-immunisations = Vaccinations
category-documents = Letters and documents
category-care-plans = Care plans and social care
category-wellbeing = Wellbeing
category-measurements = Measurements
category-empty = There is nothing here yet.
record-categories = Your record by category
record-count-entries = { $count ->
    [one] 1 entry
   *[other] { $count } entries
}
record-add-measurement = Add a measurement
record-back = Back to your record
entry-what = What
entry-when = When
entry-value = Result
entry-status = Status
entry-from = Where it came from
entry-from-you = You added this
entry-from-app = An app you use added this
entry-from-source = A health or care service
entry-label = Who can see it
entry-label-private = Only you: you have not shared entries like this with anyone.
entry-label-shared = You, and { $names }.
entry-label-sharer = { $name } ({ $role })
entry-label-acting = The person whose record this is, and the people they choose.
entry-untitled = An entry without a name
entry-not-found = This entry could not be found. It may have been deleted.
list-entry = Entry
list-date = Date
list-from = From

# Adding a measurement
add-kind-title = What do you want to add?
add-kind-submit = Continue
add-kind-missing = Select what you want to add
kind-blood-pressure = Blood pressure
kind-weight = Weight
kind-blood-glucose = Blood sugar (glucose)
kind-temperature = Temperature
kind-peak-flow = Peak flow
add-reading-title = Add your { $kind }
part-systolic = Top number (systolic)
part-diastolic = Bottom number (diastolic)
part-value = Reading
unit-mm-hg = mmHg
unit-kg = kg
unit-mmol-l = mmol/L
unit-cel = °C
unit-l-min = litres a minute
hint-blood-pressure = Enter the 2 numbers from your blood pressure monitor, for example 120 and 80.
hint-weight = In kilograms, for example 72.4
hint-blood-glucose = In mmol/L, for example 5.6
hint-temperature = In degrees Celsius, for example 37.2
hint-peak-flow = In litres a minute, for example 450
reading-when = When did you take it?
reading-when-hint = For example, 27 11 2026
date-day = Day
date-month = Month
date-year = Year
add-reading-submit = Save reading
error-not-a-number = Enter a number, like 72.4
error-out-of-range = Enter a reading between { $min } and { $max }
error-systolic-low = The top number must be higher than the bottom number
error-bad-date = Enter a real date that is not in the future
reading-added = Reading saved

# Charts
chart-title = Your { $kind } readings
chart-period = Show
chart-period-30 = Last 30 days
chart-period-90 = Last 3 months
chart-period-365 = Last year
chart-show = Update
chart-none = You have no readings in this period.
chart-summary = Your average { $kind } over this period was { $average } { $unit }, from { $count ->
    [one] 1 reading
   *[other] { $count } readings
}.
chart-summary-bp = Your average blood pressure over this period was { $average } { $unit }, from { $count ->
    [one] 1 reading
   *[other] { $count } readings
}.
chart-compare-up = That is up from { $previous } in the period before.
chart-compare-down = That is down from { $previous } in the period before.
chart-compare-same = That is the same as in the period before.
chart-image = Chart of your { $kind } readings over time. The same readings are in the table below.
chart-table = Your readings
chart-date = Date
chart-value = Reading
chart-add = Add a reading
date-only = { $day } { $month } { $year }
status-final = Final result
status-preliminary = Early result, not yet final
status-amended = Changed since first reported
status-active = Current
status-recurrence = Come back
status-relapse = Come back
status-inactive = No longer current
status-remission = In remission
status-resolved = Resolved
status-completed = Completed
status-stopped = Stopped
status-on-hold = On hold
status-cancelled = Cancelled
status-entered-in-error = Recorded in error

# Readings from apps and devices (watches, phones)
metric-steps = Steps
metric-resting_heart_rate = Resting heart rate
metric-heart_rate = Heart rate
metric-unit-steps = steps a day
metric-unit-resting_heart_rate = beats a minute
metric-unit-heart_rate = beats a minute
activity-title = { $metric }: your readings from apps and devices
activity-summary = Your average over this period was { $average } { $unit }.
activity-image = Chart of your { $metric } over time. The same numbers are in the table below.
activity-week-of = Week of { $date }
entry-delete = Delete this entry
entry-delete-title = Are you sure you want to delete this entry?
entry-delete-body = It will no longer show in your record. A copy is kept in your record's history.
entry-delete-confirm = Yes, delete it
entry-delete-cancel = No, keep it
entry-deleted = Entry deleted
entry-read-only = This entry was written by a health or care service. You cannot change or delete it.
banner-success = Success

# Adding to your record
add-title = What do you want to add?
add-something = Add to your record
add-kind-measurement = A measurement, like blood pressure or weight
add-kind-symptom = A symptom
add-kind-diary = A diary entry about how you feel
add-kind-medicine = A medicine you take
add-kind-allergy = An allergy
journal-title-symptom = Add a symptom
journal-title-diary = How are you feeling today?
journal-title-medicine = Add a medicine you take
journal-title-allergy = Add an allergy
field-symptom-what = What is the symptom?
field-symptom-what-hint = For example, headache or a cough
field-symptom-severity = How bad is it?
field-symptom-notes = Anything else you want to note (optional)
field-diary-mood = Your mood
field-diary-notes = Anything you want to write about your day (optional)
field-medicine-what = Name of the medicine
field-medicine-what-hint = As it is written on the box, for example paracetamol 500mg tablets
field-medicine-dose = How much you take, and how often (optional)
field-medicine-dose-hint = For example, 2 tablets up to 4 times a day
field-medicine-reason = What you take it for (optional)
field-allergy-what = What are you allergic to?
field-allergy-what-hint = For example, penicillin or peanuts
field-allergy-reaction = What happens when you have it? (optional)
severity-mild = Mild
severity-moderate = Moderate
severity-severe = Severe
mood-very-low = Very low
mood-low = Low
mood-okay = Okay
mood-good = Good
mood-very-good = Very good
journal-submit = Save
journal-saved = Saved to your record
error-missing-what = Enter what it is
error-missing-severity = Select how bad it is
error-missing-mood = Select your mood
error-too-long = Keep it to 2,000 characters or fewer
entry-notes = Notes

# Printable summary
summary-link = A summary of your record to print
summary-title = Summary of your health record
summary-intro = This is a summary of what your record holds, to print or save as a PDF with your browser's print option.
summary-made = Made on { $date }.
summary-name = Name
summary-nhs-number = NHS number
summary-none = None recorded
summary-latest = Latest measurements

# Your account
nav-account = Your account
account-title = Your account
account-email = Email address
account-identity = Identity check
account-identity-p0 = Not checked yet
account-identity-p5 = Basic check
account-identity-p9 = Checked against photo ID
account-authenticator = Authenticator app
account-authenticator-set = Set up
account-authenticator-replace = Replace it
account-recovery = Recovery codes
account-recovery-left = { $count ->
    [one] 1 code left
   *[other] { $count } codes left
}
account-recovery-new = Make new codes
account-password = Password
account-password-change = Change it
account-sessions = Where you're signed in
account-sessions-see = See and sign out devices
confirm-title = Confirm it's you
confirm-body = For your security, enter your password and a code from your authenticator app (or a recovery code) before you change how you sign in.
confirm-code = Security code or recovery code
confirm-submit = Continue
change-password-title = Change your password
change-password-body = Changing your password signs you out on every other device.
change-password-done = Your password has been changed

# Documents
add-kind-document = A document, like a letter (PDF or photo)
document-title = Add a document
document-name = What is it?
document-name-hint = For example, letter from the hospital about my knee
document-file = Choose the file
document-file-hint = A PDF, or a photo (JPEG or PNG), up to 5 MB
document-submit = Upload
document-download = Download the document
error-missing-title = Enter what the document is
error-no-file = Choose a file to upload
error-file-too-big = The file must be 5 MB or smaller
error-file-type = The file must be a PDF, JPEG or PNG
add-kind-matters = What matters to you in your care
add-kind-contact = Someone to contact about you, like a carer or family member
journal-title-matters = What matters to you
journal-title-contact = Add someone to contact
field-matters-what = What matters to you in your care?
field-matters-what-hint = For example, I want to stay in my own home, or please speak slowly and write things down
field-contact-what = Their name
field-contact-relationship = How they are related to you (optional)
field-contact-relationship-hint = For example, daughter, carer or neighbour
field-contact-phone = Their phone number (optional)
error-missing-phone = Enter a phone number, like 01632 960 001 or +44 7700 900 982
error-missing-contact-what = Enter their name
error-missing-matters-what = Enter what matters to you
entry-change = Change this reading
change-reading-title = Change your { $kind } reading
reading-changed = Reading changed
record-recent = What is new

## Adding data from a phone, watch or app
add-kind-import = Data from your phone, watch or app, like an Apple Health export
import-title = Add data from your phone, watch or app
import-intro = Upload a file exported from a health app or device. Your readings are added to your record, and readings already in it are not added twice.
import-kinds = Hale reads an Apple Health export (the export.zip file), a Garmin or other FIT file, and files saved from Fitbit, Google Fit or Open mHealth apps.
import-file = Choose the file
import-file-hint = Files up to 4 GB. A large export can take a few minutes to add.
import-submit = Upload and add
import-no-file = Choose a file to upload
import-going-title = Adding your data
import-progress = { $records } records read so far, { $percent }% of the file.
import-leave = You can leave this page. Adding carries on, and this page shows how far it has got when you come back. It updates by itself; if it does not, refresh the page.
import-check = Check progress
import-done-title = Your data has been added
import-added = New readings added: { $count }
import-already = Already in your record, so not added again: { $count }
import-damaged = Part of the file was damaged. What came before the damage has been added.
import-failed-title = Your data could not be added
important = Important
import-failed-label = Nothing more was added
import-problem-not-recognised = This is not a file Hale can read. Upload an Apple Health export, a FIT file, or a file saved from Fitbit, Google Fit or an Open mHealth app.
import-problem-unreadable = The file is damaged and cannot be read. Try exporting it again.
import-problem-stopped = Something went wrong while adding your data. Try again later.
import-not-added = Not added
import-not-added-line = { $count }: { $why }
import-why-unknown-type = readings of a kind Hale does not keep yet
import-why-bad-value = a missing or unreadable value
import-why-bad-date = a missing or unreadable date
import-why-unknown-unit = a unit Hale does not recognise
import-why-malformed = unreadable entries
import-why-statistic = summaries, like a daily average, rather than readings
import-why-other-person = readings about someone else
import-see-charts = See your readings from apps and devices
import-another = Add another file

## Readings from apps and devices: each metric's name, and the unit of its chart's figures
metric-heart_rate_variability = Heart rate variability
metric-body_weight = Weight
metric-body_height = Height
metric-bmi = Body mass index
metric-systolic_bp = Systolic blood pressure (the higher number)
metric-diastolic_bp = Diastolic blood pressure (the lower number)
metric-oxygen_saturation = Blood oxygen
metric-respiratory_rate = Breathing rate
metric-body_temperature = Body temperature
metric-blood_glucose = Blood sugar
metric-active_energy = Active energy
metric-walking_running_distance = Walking and running distance
metric-body_fat = Body fat
metric-sleep = Sleep
metric-unit-heart_rate_variability = milliseconds
metric-unit-body_weight = kg
metric-unit-body_height = cm
metric-unit-bmi = kg/m²
metric-unit-systolic_bp = mmHg
metric-unit-diastolic_bp = mmHg
metric-unit-oxygen_saturation = %
metric-unit-respiratory_rate = breaths a minute
metric-unit-body_temperature = °C
metric-unit-blood_glucose = mmol/L
metric-unit-active_energy = kcal a day
metric-unit-walking_running_distance = metres a day
metric-unit-body_fat = %
metric-unit-sleep = minutes a day
import-clinical = Records from health services that your phone held: { $added } added, { $already } already in your record, { $refused } that Hale could not read.

## Who has looked at your record
looked-link = Who has looked at your record
looked-title = Who has looked at your record
looked-intro = Everyone who looks at, adds to or changes your record is listed here, with when and how. The list cannot be changed, by anyone.
looked-show-all = Show what you did as well
looked-show-others = Show only what others did
looked-none = Nobody else has looked at your record yet.
looked-caption = Newest first
looked-col-when = When
looked-col-who = Who
looked-col-what = What
looked-col-through = Through
looked-older = Older entries
looked-when = { $date } at { $time }
looked-who-you = You
looked-who-account = Someone with a Hale account
looked-who-operator = A Hale operator
looked-who-hale = Hale, adding data you uploaded
looked-who-system = An organisation's system ({ $name })
looked-who-app = An app ({ $name })
looked-through-website = Hale website
looked-through-direct = Directly
looked-what = { $action } { $kind }
looked-action-read = Looked at
looked-action-search = Searched
looked-action-history = Looked at the history of
looked-action-write = Added or changed
looked-action-delete = Deleted
looked-action-other = Used
looked-action-everything = Looked at your whole record
looked-action-import = Added readings from an app or device
looked-action-verify-identity = Recorded that your identity was checked
looked-type-Observation = test results or measurements
looked-type-Condition = conditions
looked-type-MedicationStatement = medicines
looked-type-MedicationRequest = medicines
looked-type-AllergyIntolerance = allergies
looked-type-Immunization = vaccinations
looked-type-DocumentReference = documents
looked-type-Patient = your details
looked-type-samples = readings from apps and devices
looked-type-CarePlan = care plans
looked-type-Goal = what matters to you
looked-type-RelatedPerson = contacts
looked-type-Provenance = where entries came from
looked-type-other = other entries

## Privacy labels: who can see an entry
entry-label-value = { $label }. { $who }
label-name-general = General
label-name-mental-health = Mental health
label-name-sexual-health = Sexual health
label-name-social-care = Social care
label-change = Change who can see it
label-title = Who can see this entry?
label-back = Back to the entry
label-intro = Labels let you share parts of your record and keep others private. When you share your record, you choose which labels each person or service can see.
label-choice-general = General: anyone you share your record with
label-choice-mental-health = Mental health: only people you share mental health entries with
label-choice-sexual-health = Sexual health: only people you share sexual health entries with
label-choice-social-care = Social care: only people you share social care entries with
label-submit = Save
label-missing = Select who can see this entry
label-changed = Who can see this entry has been changed

## Sharing: giving access, taking it back, and looking at a record shared with you
sharing-link = Who can see your record
sharing-title = Who can see your record
sharing-intro = You can let a carer, a relative or a health or care professional see parts of your record. You choose what they see, and you can take their access back at any time. Everything they look at is listed on the "Who has looked at your record" page.
sharing-none = You have not shared your record with anyone.
sharing-who = Who they are
sharing-status = Access
sharing-labels = What they can see
sharing-kinds = Kinds of entry
sharing-access = What they can do
sharing-dates = When
sharing-dates-open = From { $from }, until you take it back
sharing-dates-until = From { $from } until { $until }
sharing-kinds-all = Every kind
sharing-kind-conditions = Conditions
sharing-kind-medicines = Medicines
sharing-kind-allergies = Allergies
sharing-kind-observations = Test results, measurements and wellbeing
sharing-kind-immunisations = Vaccinations
sharing-kind-documents = Letters and documents
sharing-kind-care-plans = Care plans and contacts
sharing-access-read = Look only
sharing-access-write = Look, and add entries
sharing-status-invited = Invited. They have not accepted yet
sharing-status-active = Has access now
sharing-status-not-yet = Starts later
sharing-status-ended = Ended
sharing-status-revoked = You took access back
sharing-revoke = Take back access for { $name }
sharing-given = We have emailed them an invitation. They will have access when they accept it.
sharing-revoked = Access taken back. They can no longer see your record.
role-carer = Carer
role-family = Relative or friend
role-professional = Health or care professional
give-title = Give someone access
give-body = We will email them a link. They need to sign in to Hale, or create an account, to accept it. We will email you when they do.
give-name = Their name
give-email = Their email address
give-email-hint = We only use this to send the invitation.
give-role = Who are they to you?
give-labels = What can they see?
give-labels-hint = Select all that apply. Each entry in your record has one of these labels.
give-kinds = Which kinds of entry?
give-kinds-hint = Leave these all unselected to share every kind of entry with the labels above.
give-access = What can they do?
give-duration = For how long?
give-duration-until-revoked = Until I take it back
give-duration-week = 1 week
give-duration-month = 1 month
give-duration-year = 1 year
give-submit = Send invitation
give-error-name = Enter their name
give-error-role = Select who they are to you
give-error-labels = Select at least one thing they can see
give-error-kinds = Select kinds of entry from the list
give-error-duration = Select how long they can have access for
shared-link = Records shared with you
shared-title = Records shared with you
shared-intro = These are the people who have given you access to their record. What you look at and add is shown to them.
shared-none = Nobody has shared their record with you.
shared-you-are = You are their
shared-open = Look at { $name }'s record
shared-accepted = You have accepted. You can now look at their record.
accept-title = Accept access to a health record
accept-body = Someone has invited you to see parts of their health record.
accept-body-2 = When you accept, they will be told by email, and everything you look at will be shown to them. They can take your access back at any time.
accept-submit = Accept
accept-sign-in-first = To accept, sign in to Hale (or create an account and sign in), then follow the link in the email again.
accept-invalid-title = This invitation cannot be used
accept-invalid-body = The link may have expired, been used already, or been withdrawn. Ask the person who invited you to send a new one.
access-ended-title = Your access has ended
access-ended-body = You can no longer look at this record. The person may have taken their access back, or it may have reached its end date.
access-ended-own = Go to your own record
acting-important = Important
acting-heading = You are looking at someone else's record
acting-body = What you see and add is in their record, not yours, and they can see what you looked at.
acting-leave = Back to your own record
record-title-acting = { $name }'s record
looked-who-grantee = { $name } ({ $role }), with the access you gave them
not-allowed-title = You cannot do that
not-allowed-body = The access you have does not allow it. If this is someone else's record and you think you should be able to, ask them to change what they share with you.
looked-action-give-access = Invited someone to see
looked-action-accept-access = Accepted your invitation to see
looked-action-revoke-access = Took back access to
looked-type-Consent = your record
add-something-acting = Add to their record
summary-link-acting = A summary of their record to print
record-categories-acting = Their record by category
