"""The texts int8 quantization is measured on, for any Hugging Face text model.

Written for this purpose, apart from the tests' parity texts (tests/support/texts.py), so
that the int8 search does not fit the very sentences the tests then check it on. Short
and long, questions, numbers, code, markup, other languages and emoji: dynamic int8's
activation ranges are measured per batch, so odd inputs matter as much as plain prose.
"""

from __future__ import annotations

EVALUATION_TEXTS = [
    "Good morning!",
    "thanks",
    "Is it going to rain this afternoon?",
    "The bakery on the corner sells the best croissants in town.",
    "Turn left at the second traffic light and the station is on your right.",
    "My laptop battery drains within two hours even when it is idle.",
    "Can you recommend a good book about the history of mathematics?",
    "The committee postponed its decision until the next quarterly meeting.",
    "Our dog learned to open the fridge, which is both impressive and a problem.",
    "The train from Vienna to Prague takes about four hours.",
    "Please send me the invoice as a PDF by Friday.",
    "I ordered a medium pizza but received a large one, so I am not complaining.",
    "Volcanic eruptions can cool the global climate for several years.",
    "Honeybees communicate the location of flowers with a waggle dance.",
    "The speed of light in a vacuum is 299,792,458 metres per second.",
    "DNA is made of four bases: adenine, cytosine, guanine and thymine.",
    "Interest on the loan is 3.75% per year, compounded monthly.",
    "Revenue grew 8% to EUR 1.3 billion while operating costs stayed flat.",
    "The warehouse shipped 12,480 parcels on Monday, a new record.",
    "Call +1 (555) 010-7788 between 9:00 and 17:30 on weekdays.",
    "Order #A-5521 was dispatched on 2024-03-18 and should arrive in 3-5 days.",
    "SELECT name, price FROM products WHERE price > 100 ORDER BY price DESC;",
    "def add(a: int, b: int) -> int: return a + b",
    "Set the environment variable HF_HUB_OFFLINE=1 to stop downloads.",
    "<p>Click <a href='/help'>here</a> for help.</p>",
    '{"user": "ada", "roles": ["admin", "editor"], "active": true}',
    "The build failed: error[E0308]: mismatched types, expected `u32`, found `i64`.",
    "Restart the service with systemctl restart nginx and check the logs.",
    "The database connection pool was exhausted during the traffic spike.",
    "Our API returns HTTP 429 when a client sends more than 100 requests per second.",
    "The hikers reached the summit just before the storm rolled in.",
    "She painted the fence blue, then changed her mind and painted it green.",
    "A quiet library is the perfect place to study for exams.",
    "The children built a sandcastle that the tide washed away by noon.",
    "He apologised for being late and blamed the traffic on the bridge.",
    "The violinist played an encore that brought the audience to its feet.",
    "Few things are as satisfying as a freshly made bed.",
    "The chef recommends the grilled salmon with lemon butter sauce.",
    "Add the onions to the pan and cook until they are soft and golden.",
    "Store the vaccine between two and eight degrees Celsius.",
    "The patient reported mild headaches and occasional dizziness.",
    "Regular exercise lowers the risk of heart disease and improves sleep.",
    "The goalkeeper saved a penalty in the final minute of the game.",
    "The tennis match lasted five sets and almost six hours.",
    "The election results will be announced after all the ballots are counted.",
    "Parliament passed the bill by a narrow margin of four votes.",
    "Wildfires forced thousands of residents to leave their homes overnight.",
    "The new bridge will cut the commute between the two cities by half.",
    "Nous avons réservé une table pour quatre personnes à vingt heures.",
    "Die Besprechung wurde auf nächsten Dienstag verschoben.",
    "¿Dónde está la estación de tren más cercana?",
    "Il museo è chiuso il lunedì e nei giorni festivi.",
    "Ik woon al tien jaar in Amsterdam en fiets elke dag naar mijn werk.",
    "Москва — столица России.",
    "今日はとても暑いですね。",
    "我们明天早上八点在公司门口见面。",
    "The new update is fantastic 😍🔥",
    "worst customer service ever!!! never again 😡",
    "lol idk what u mean",
    "Hmm...",
    "?!",
    "42",
    "N/A",
    "Terms and conditions apply; see section 4(b)(ii) for details.",
    "The contract may be terminated by either party with thirty days' written notice,"
    " provided that all outstanding invoices have been paid in full and any confidential"
    " material has been returned or destroyed.",
    "When the first settlers arrived in the valley they found fertile soil, a river full"
    " of fish and forests that stretched to the mountains; within a generation the small"
    " camp had grown into a market town with a church, a school and a weekly fair.",
    "Large language models are trained on vast amounts of text to predict the next token,"
    " and although the objective is simple, the resulting systems can summarise documents,"
    " translate between languages, write code and answer questions about many subjects.",
    "To configure the device, hold the power button for ten seconds until the light"
    " blinks twice, connect to the network it creates, open the setup page in a browser,"
    " enter your home network's name and password, and wait while it restarts.",
    "The report concludes that, while renewable capacity has tripled over the decade,"
    " storage and grid investment have not kept pace, which leaves some regions curtailing"
    " wind and solar output on sunny, windy days and importing power on calm evenings.",
    "Dear Ms. Patel, thank you for your application. We were impressed by your experience"
    " and would like to invite you to an interview at our office next Wednesday at 10am."
    " Please let us know whether this time suits you. Kind regards, the hiring team.",
]
