"""Vocabulary of the synthetic catalogue: the category tree and the per-root text material.

The tree is modelled on Amazon/XMarket browse trees: roots first, homonymous names reused under
different parents ("Accessories", "Parts", "Sets", "Running Shoes", ...), leaves at depth 2 to 6.

Syntax of :data:`TREE`: a dict maps a category to its children; a list holds leaves (or dicts for
sub-trees); ``None`` marks a leaf given as a dict key. ``"Name|synonym|synonym"`` attaches title
synonyms to a category (only the part before the first ``|`` is the category name).

Attribute value templates (:data:`ROOT_STYLE` ``attributes``): every ``#`` becomes a random digit.
"""

from __future__ import annotations

from typing import Any

TREE: dict[str, Any] = {
    "Electronics": {
        "Computers & Accessories": {
            "Laptops|notebook": ["Gaming Laptops", "Ultrabooks|thin notebook", "2-in-1 Laptops", "Chromebooks"],
            "Laptop Accessories": ["Laptop Bags|laptop sleeve", "Laptop Stands", "Docking Stations|USB-C hub",
                                   "Cooling Pads"],
            "Computer Components": {"Storage": ["Internal SSDs|solid state drive", "External Hard Drives",
                                                "USB Flash Drives|thumb drive"],
                                    "Memory|RAM": None, "Graphics Cards|GPU": None, "Cases": None},
            "Keyboards & Mice": {"Keyboards": ["Mechanical Keyboards", "Wireless Keyboards"],
                                 "Mice": ["Gaming Mice|gaming mouse", "Wireless Mice|wireless mouse"],
                                 "Mouse Pads": None},
            "Monitors|display": None,
        },
        "Camera & Photo": {
            "Digital Cameras": ["Mirrorless Cameras", "DSLR Cameras", "Action Cameras|action cam",
                                "Instant Cameras"],
            "Lenses": ["Zoom Lenses", "Prime Lenses"],
            "Tripods & Monopods|tripod": None,
            "Accessories": ["Camera Bags", "Memory Cards|SD card", "Camera Batteries"],
        },
        "Headphones & Audio": {
            "Headphones": ["Over-Ear Headphones", "Earbuds|in-ear headphones", "Noise Cancelling Headphones",
                           "Sports Headphones"],
            "Speakers": {"Bluetooth Speakers|portable speaker": None, "Smart Speakers": None, "Soundbars": None,
                         "Home Theater": ["Subwoofers", "AV Receivers"]},
        },
        "Cell Phones & Accessories": {
            "Cases": ["Phone Cases|phone cover", "Tablet Cases"],
            "Chargers": ["Wall Chargers|charging adapter", "Wireless Chargers|charging pad", "Car Chargers",
                         "Power Banks|portable charger"],
            "Screen Protectors|tempered glass": None,
            "Cables": ["USB-C Cables", "Lightning Cables"],
        },
        "Television & Video": ["Televisions|smart TV", "Streaming Media Players", "Projectors",
                               {"Accessories": ["TV Mounts|wall mount", "Remote Controls"]}],
        "Wearable Technology": ["Smartwatches|smart watch", "Fitness Trackers|activity tracker", "Accessories"],
    },
    "Home & Kitchen": {
        "Kitchen & Dining": {
            "Coffee, Tea & Espresso": {
                "Coffee Machines|coffee maker": {
                    "Espresso Machines|espresso maker": ["Semi-Automatic Espresso Machines",
                                                         "Super-Automatic Espresso Machines",
                                                         "Manual Espresso Machines|lever espresso maker"],
                    "Drip Coffee Makers|filter coffee machine": None, "Pod Coffee Machines|capsule machine": None,
                    "Cold Brew Coffee Makers": None,
                },
                "Coffee Grinders": ["Burr Grinders", "Blade Grinders"],
                "Tea Kettles|electric kettle": None, "Milk Frothers": None,
                "Accessories": ["Coffee Filters", "Espresso Tampers", "Descaling Products|descaler"],
            },
            "Cookware": {"Pots & Pans": ["Frying Pans|skillet", "Saucepans", "Stockpots", "Woks", "Dutch Ovens"],
                         "Sets": None, "Bakeware": ["Baking Sheets", "Cake Pans", "Muffin Pans"]},
            "Small Appliances": {"Blenders": ["Countertop Blenders", "Immersion Blenders|hand blender",
                                              "Personal Blenders|smoothie maker"],
                                 "Toasters": None, "Air Fryers": None, "Slow Cookers|crock pot": None,
                                 "Food Processors": None, "Parts": None},
            "Cutlery & Knives": ["Chef's Knives", "Sets", "Knife Sharpeners", "Cutting Boards|chopping board"],
            "Dining & Entertaining": {"Dinnerware": ["Plates", "Bowls", "Mugs|coffee cup"],
                                      "Glassware": ["Wine Glasses", "Tumblers"], "Flatware|silverware": None},
            "Kitchen Storage": ["Food Storage Containers", "Spice Racks", "Lunch Boxes"],
        },
        "Bedding": ["Sheets & Pillowcases|bed sheet", "Duvet Covers", "Pillows", "Blankets|throw",
                    "Mattress Toppers"],
        "Bath": {"Towels": ["Bath Towels", "Hand Towels", "Beach Towels"],
                 "Bathroom Accessories": ["Soap Dispensers", "Toothbrush Holders", "Shower Curtains"],
                 "Bath Rugs|bath mat": None},
        "Home Décor": ["Candles", "Picture Frames|photo frame", "Vases", "Wall Clocks", "Artificial Plants",
                       "Throw Pillows|cushion"],
        "Vacuums & Floor Care": {"Vacuums|vacuum cleaner": ["Robot Vacuums|robot cleaner", "Stick Vacuums",
                                                            "Upright Vacuums", "Handheld Vacuums"],
                                 "Parts": ["Vacuum Filters", "Vacuum Bags"], "Steam Mops": None},
        "Heating, Cooling & Air Quality": ["Space Heaters", "Fans", "Air Purifiers|HEPA purifier", "Humidifiers",
                                           "Dehumidifiers"],
        "Storage & Organization": ["Closet Organizers", "Storage Bins", "Laundry Baskets|hamper", "Shoe Racks"],
    },
    "Sports & Outdoors": {
        "Exercise & Fitness": {
            "Strength Training": ["Dumbbells|hand weights", "Kettlebells", "Weight Benches",
                                  "Resistance Bands|exercise bands"],
            "Cardio Equipment": ["Treadmills", "Exercise Bikes|stationary bike", "Rowing Machines",
                                 "Elliptical Trainers"],
            "Yoga": ["Yoga Mats", "Yoga Blocks", "Yoga Straps"],
            "Accessories": ["Jump Ropes|skipping rope", "Gym Bags", "Foam Rollers"],
        },
        "Outdoor Recreation": {
            "Camping & Hiking": {"Tents": ["Backpacking Tents", "Family Tents", "Pop-Up Tents"],
                                 "Sleeping Bags": None, "Camp Kitchen": ["Camping Stoves", "Sets"],
                                 "Lights": ["Headlamps|head torch", "Lanterns", "Flashlights|torch"],
                                 "Backpacks|rucksack": None},
            "Climbing": ["Climbing Harnesses", "Carabiners", "Climbing Ropes"],
            "Water Sports": ["Kayaks", "Paddles", "Life Jackets|PFD", "Snorkeling Sets"],
        },
        "Cycling": {"Bikes|bicycle": ["Mountain Bikes|MTB", "Road Bikes", "Electric Bikes|e-bike", "Kids' Bikes"],
                    "Parts": ["Bike Tires", "Bike Chains", "Pedals", "Brakes"],
                    "Accessories": ["Bike Helmets", "Bike Lights", "Bike Locks", "Bike Pumps"]},
        "Team Sports": {"Soccer|football": ["Soccer Balls", "Shin Guards", "Goalkeeper Gloves"],
                        "Basketball": ["Basketballs", "Basketball Hoops"],
                        "Baseball": ["Baseball Bats", "Baseball Gloves|mitt"]},
        "Racquet Sports": ["Tennis Rackets|tennis racquet", "Tennis Balls", "Badminton Sets", "Pickleball Paddles"],
        "Fishing": ["Fishing Rods|fishing pole", "Fishing Reels", "Fishing Lures|bait", "Tackle Boxes"],
    },
    "Toys & Games": {
        "Building Toys": ["Building Sets|building bricks", "Marble Runs", "Magnetic Tiles"],
        "Games": {"Board Games": ["Strategy Games", "Family Games", "Party Games"], "Card Games": None,
                  "Puzzles": ["Jigsaw Puzzles", "Brain Teasers", "3D Puzzles"]},
        "Dolls & Accessories": ["Fashion Dolls", "Baby Dolls", "Dollhouses", "Accessories"],
        "Remote Control & Play Vehicles": {"RC Vehicles": ["RC Cars|remote control car", "RC Helicopters",
                                                           "Drones|quadcopter"],
                                           "Play Vehicles": ["Toy Trains", "Die-Cast Cars"], "Parts": None},
        "Stuffed Animals & Plush": ["Teddy Bears", "Plush Animals|stuffed animal", "Plush Pillows"],
        "Kids' Arts & Crafts": ["Drawing Kits", "Clay & Dough|modeling clay", "Craft Kits"],
        "Learning & Education": ["Science Kits", "STEM Toys", "Musical Toys", "Flash Cards"],
        "Sports & Outdoor Play": ["Water Guns|water blaster", "Kites", "Play Tents", "Swing Sets"],
        "Baby & Toddler Toys": ["Stacking Toys", "Rattles", "Bath Toys"],
    },
    "Beauty & Personal Care": {
        "Skin Care": {"Face": ["Moisturizers|face cream", "Cleansers|face wash", "Serums", "Face Masks",
                               "Toners"],
                      "Body": ["Body Lotions", "Body Scrubs"], "Sun Care": ["Sunscreens|SPF 50", "After Sun"],
                      "Sets": None},
        "Hair Care": {"Shampoo & Conditioner": ["Shampoos", "Conditioners", "Sets"],
                      "Styling Tools": ["Hair Dryers|blow dryer", "Flat Irons|hair straightener", "Curling Irons",
                                        "Hot Air Brushes"],
                      "Hair Treatments|hair mask": None},
        "Makeup": {"Face": ["Foundations", "Concealers", "Blush", "Powders"],
                   "Eyes": ["Mascara", "Eyeliners", "Eyeshadow Palettes"],
                   "Lips": ["Lipsticks", "Lip Gloss", "Lip Balms"],
                   "Brushes & Tools": ["Makeup Brushes", "Makeup Sponges|beauty blender"]},
        "Fragrance": ["Perfumes|eau de parfum", "Colognes|eau de toilette", "Body Mists"],
        "Shaving & Hair Removal": {"Men's": ["Electric Shavers", "Razors", "Shaving Creams"],
                                   "Women's": ["Epilators", "Razors"]},
        "Oral Care": ["Electric Toothbrushes|sonic toothbrush", "Toothpaste", "Water Flossers",
                      "Replacement Brush Heads"],
        "Tools & Accessories": ["Mirrors", "Cosmetic Bags|makeup bag", "Nail Clippers"],
    },
    "Automotive": {
        "Car Electronics": {"Car Audio": ["Car Stereos|head unit", "Car Speakers", "Amplifiers"],
                            "Dash Cams|dashboard camera": None, "GPS Navigators|sat nav": None,
                            "Accessories": ["Phone Mounts|phone holder", "Car Chargers"]},
        "Replacement Parts": {"Brake System": ["Brake Pads", "Brake Rotors", "Brake Calipers"],
                              "Filters": ["Oil Filters", "Air Filters", "Cabin Air Filters"],
                              "Lighting": ["Headlight Bulbs", "Tail Lights", "Fog Lights"],
                              "Ignition": ["Spark Plugs", "Ignition Coils"], "Batteries": None},
        "Interior Accessories": ["Seat Covers", "Floor Mats|car mats", "Steering Wheel Covers", "Sun Shades",
                                 "Organizers"],
        "Exterior Accessories": ["Car Covers", "Roof Racks", "Mud Flaps", "Bumper Stickers"],
        "Tools & Equipment": ["Jump Starters|booster pack", "Tire Inflators|air compressor", "Jacks",
                              "Diagnostic Tools|OBD2 scanner"],
        "Car Care": {"Cleaning": ["Car Wash Soap", "Microfiber Cloths", "Car Wax"], "Detailing Kits": None},
        "Oils & Fluids": ["Motor Oil", "Coolant|antifreeze", "Brake Fluid"],
        "Motorcycle & Powersports": {"Protective Gear": ["Motorcycle Helmets", "Riding Gloves", "Riding Jackets"],
                                     "Parts": None},
    },
    "Office Products": {
        "Office Supplies": {
            "Writing & Correction": {"Pens": ["Ballpoint Pens", "Gel Pens", "Fountain Pens"],
                                     "Pencils": ["Mechanical Pencils", "Wooden Pencils"],
                                     "Markers & Highlighters": ["Highlighters", "Permanent Markers",
                                                                "Dry Erase Markers|whiteboard marker"]},
            "Paper": ["Copy Paper|printer paper", "Notebooks|journal", "Sticky Notes|post-it", "Index Cards"],
            "Desk Accessories": ["Staplers", "Tape Dispensers", "Desk Organizers", "Scissors"],
            "Filing Products": ["File Folders", "Binders|ring binder", "Labels"],
        },
        "Office Electronics": {"Printers": ["Inkjet Printers", "Laser Printers", "Label Printers|label maker"],
                               "Calculators": None, "Shredders|paper shredder": None,
                               "Ink & Toner": ["Ink Cartridges", "Toner Cartridges"]},
        "Office Furniture": ["Office Chairs|desk chair", "Desks", "Standing Desk Converters", "Bookcases",
                             "Filing Cabinets"],
        "School Supplies": ["Backpacks|school bag", "Pencil Cases", "Lunch Boxes"],
    },
    "Clothing, Shoes & Jewelry": {
        "Women": {
            "Clothing": {"Dresses": ["Casual Dresses", "Cocktail Dresses", "Maxi Dresses"],
                         "Tops & Tees": ["Blouses", "T-Shirts|tee", "Tank Tops"], "Jeans|denim": None,
                         "Coats & Jackets": ["Puffer Jackets|down jacket", "Trench Coats", "Rain Jackets"],
                         "Activewear": ["Leggings|yoga pants", "Sports Bras"]},
            "Shoes": {"Athletic": [{"Running Shoes|running sneakers": ["Trail Running Shoes",
                                                                       "Road Running Shoes"]},
                                   "Walking Shoes", "Training Shoes"],
                      "Boots": ["Ankle Boots|booties", "Knee-High Boots"], "Sandals": None, "Pumps|heels": None},
            "Jewelry": ["Necklaces|pendant", "Earrings|studs", "Rings", "Bracelets"],
            "Accessories": ["Handbags|purse", "Scarves", "Sunglasses|shades", "Hats"],
            "Watches": None,
        },
        "Men": {
            "Clothing": {"Shirts": ["Dress Shirts", "T-Shirts|tee", "Polos|polo shirt"], "Jeans|denim": None,
                         "Pants": ["Chinos", "Joggers|sweatpants", "Cargo Pants"],
                         "Coats & Jackets": ["Puffer Jackets|down jacket", "Rain Jackets", "Blazers"],
                         "Activewear": None},
            "Shoes": {"Athletic": [{"Running Shoes|running sneakers": ["Trail Running Shoes",
                                                                       "Road Running Shoes"]},
                                   "Basketball Shoes", "Training Shoes"],
                      "Boots": None, "Loafers": None, "Sneakers": None},
            "Accessories": ["Belts", "Wallets", "Sunglasses|shades", "Ties|necktie"],
            "Watches": None,
        },
        "Kids": {"Girls": ["Dresses", "School Uniforms", "Shoes"], "Boys": ["T-Shirts|tee", "Shorts", "Shoes"],
                 "Baby": ["Bodysuits|onesie", "Sleepwear|pajamas"]},
        "Luggage & Travel Gear": ["Suitcases|luggage", "Carry-Ons|cabin bag", "Travel Backpacks", "Packing Cubes"],
    },
    "Tools & Home Improvement": {
        "Power Tools": {"Drills": ["Cordless Drills|drill driver", "Hammer Drills"],
                        "Saws": ["Circular Saws", "Jigsaws", "Reciprocating Saws", "Miter Saws"],
                        "Sanders": ["Orbital Sanders", "Belt Sanders"], "Batteries & Chargers": None,
                        "Accessories": ["Drill Bits", "Saw Blades", "Sanding Discs"]},
        "Hand Tools": ["Screwdrivers", "Wrenches|spanner", "Pliers", "Hammers", "Tape Measures", "Sets"],
        "Lighting & Ceiling Fans": {"Ceiling Lights": ["Chandeliers", "Pendant Lights", "Flush Mount Lights"],
                                    "Lamps": ["Desk Lamps", "Floor Lamps", "Table Lamps"],
                                    "Light Bulbs": ["LED Bulbs", "Smart Bulbs"], "Ceiling Fans": None},
        "Kitchen & Bath Fixtures": {"Faucets|tap": ["Kitchen Faucets", "Bathroom Faucets"],
                                    "Showerheads|rain shower": None, "Sinks": None, "Parts": None},
        "Electrical": ["Extension Cords", "Outlets", "Light Switches|dimmer", "Surge Protectors|power strip"],
        "Safety & Security": ["Smoke Detectors|smoke alarm", "Security Cameras|CCTV", "Door Locks|smart lock",
                              "Safes"],
        "Painting Supplies": ["Paint Brushes", "Paint Rollers", "Painter's Tape|masking tape", "Drop Cloths"],
        "Tool Storage": ["Tool Boxes", "Tool Chests", "Tool Bags"],
    },
    "Grocery & Gourmet Food": {
        "Beverages": {"Coffee": ["Whole Bean Coffee|coffee beans", "Ground Coffee", "Coffee Pods|capsules",
                                 "Instant Coffee"],
                      "Tea": ["Green Tea", "Black Tea", "Herbal Tea|infusion"], "Juices": None,
                      "Sparkling Water|seltzer": None, "Energy Drinks": None},
        "Snack Foods": {"Chips & Crisps": ["Potato Chips", "Tortilla Chips"],
                        "Nuts & Seeds": ["Almonds", "Cashews", "Mixed Nuts|trail mix"], "Cookies|biscuits": None,
                        "Crackers": None, "Bars": ["Protein Bars", "Granola Bars"]},
        "Pantry Staples": {"Pasta & Noodles": ["Spaghetti", "Ramen|instant noodles", "Egg Noodles"],
                           "Rice & Grains": ["Basmati Rice", "Quinoa", "Oats|porridge"],
                           "Sauces": ["Pasta Sauces", "Hot Sauces", "Soy Sauce"],
                           "Oils & Vinegars": ["Olive Oil|extra virgin", "Coconut Oil", "Balsamic Vinegar"],
                           "Herbs & Spices": ["Black Pepper", "Cinnamon", "Paprika", "Sets"]},
        "Breakfast Foods": ["Cereals", "Granola", "Pancake Mixes", "Jams & Spreads|jam"],
        "Candy & Chocolate": ["Chocolate Bars", "Gummy Candy|gummies", "Hard Candy", "Gift Sets"],
        "Baking Supplies": ["Flour", "Sugar", "Baking Mixes", "Sprinkles"],
    },
}

# Colour name -> RGB fill of the rendered object.
COLOURS: dict[str, tuple[int, int, int]] = {
    "Black": (30, 30, 32), "White": (238, 238, 236), "Grey": (128, 130, 134), "Silver": (190, 192, 198),
    "Red": (200, 30, 40), "Blue": (30, 80, 200), "Navy": (25, 35, 90), "Green": (40, 150, 60),
    "Olive": (110, 120, 50), "Yellow": (235, 200, 40), "Orange": (240, 130, 30), "Pink": (235, 120, 170),
    "Purple": (120, 50, 160), "Brown": (120, 75, 40), "Beige": (215, 195, 160), "Teal": (20, 140, 140),
    "Gold": (200, 160, 50), "Rose Gold": (210, 150, 140),
}

GENERIC_ADJECTIVES = ["Premium", "Upgraded", "Portable", "Compact", "Professional", "Heavy Duty", "Lightweight",
                      "Classic", "Deluxe", "Ultra", "Original", "Eco-Friendly", "Durable", "Mini"]
PACKS = ["2-Pack", "Set of 3", "1 Count", "Pack of 6", "4 Pack", "Bundle", "Pack of 2", "Single"]
EXTRA_TOKENS = ["NEW", "2024 Upgraded", "[Exclusive]", "(Renewed)", "- Gift Idea", "Limited Edition",
                "| Fast Shipping", "Best Seller", "(Large)", "XL", "V2"]
GENERIC_BULLETS = [
    "1-year manufacturer warranty", "Satisfaction guaranteed or your money back", "Makes a great gift",
    "Ships in frustration-free packaging", "Customer support available 24/7", "Imported",
    "Easy to use, no assembly required", "Premium quality at an affordable price",
    "Package contents: see product description", "Designed in Germany", "Made in USA",
    "Lightweight and easy to carry", "Suitable for everyday use",
]
EVIDENCE_BULLETS = [  # placeholders: {leaf} / {parent} (lower-case names), {root}
    "Perfect {leaf} for home and travel", "Compatible with most {parent}", "Our best-selling {leaf} line",
    "Great addition to any {parent} collection", "Everything you expect from a quality {leaf}",
    "Part of the {root} range", "Replaces standard {leaf}",
]

_S = "Stainless steel"
ROOT_STYLE: dict[str, dict[str, Any]] = {
    "Electronics": {
        "brands": ["Voltix", "Sonara", "Pixelon", "Nexcore", "Lumio", "Kyvo", "Zentra"],
        "adjectives": ["Wireless", "Smart", "4K", "Bluetooth", "Fast-Charging", "Noise Cancelling", "HD"],
        "features": ["with Bluetooth 5.3", "with USB-C", "with 4K Ultra HD", "with 30-Hour Battery",
                     "with Fast Charging", "with Wi-Fi 6"],
        "nouns": ["Device", "Gadget", "Unit", "Kit"],
        "palette": ["Black", "White", "Silver", "Grey", "Blue", "Navy"],
        "attributes": {"Connectivity": ["Bluetooth 5.#", "Wi-Fi", "USB-C", "HDMI 2.#", "Wired"],
                       "Battery life": ["up to ## hours", "#.# hours"], "Power": ["## W", "#.# W"],
                       "Compatible with": ["iPhone 1#", "Android", "Windows 1# and macOS", "Samsung Galaxy S2#"],
                       "Resolution": ["4K", "1080p", "#K"], "Storage": ["### GB", "# TB"],
                       "Weight": ["### g"], "Material": ["Aluminium", "ABS plastic", "Tempered glass"]},
        "bullets": ["Plug and play, no drivers needed", "Crystal clear sound and deep bass",
                    "Long-lasting rechargeable battery", "Supports fast charging", "Ultra-low latency"],
    },
    "Home & Kitchen": {
        "brands": ["Kitchara", "Homely", "Brewista", "Cozimo", "Casavia", "Ovenly", "Dwellora"],
        "adjectives": ["Stainless Steel", "Non-Stick", "Programmable", "BPA-Free", "Ceramic", "Dishwasher Safe"],
        "features": ["with Timer", "with Glass Lid", "for Kitchen", "with Auto Shut-Off", "for Home and Office",
                     "with Removable Filter"],
        "nouns": ["Set", "Essentials", "Home Helper", "Kit"],
        "palette": ["White", "Silver", "Black", "Beige", "Red", "Teal"],
        "attributes": {"Material": [_S, "Ceramic", "Cotton", "Bamboo", "Borosilicate glass", "Cast iron"],
                       "Power": ["1#00 W", "##0 W"], "Capacity": ["#.# L", "## oz", "# cups"],
                       "Dimensions": ["## x ## x ## cm"], "Care": ["Dishwasher safe", "Machine washable",
                                                                   "Hand wash only"],
                       "Voltage": ["220-240 V", "120 V"], "Thread count": ["#00"]},
        "bullets": ["Easy to clean and dishwasher safe", "BPA-free food-grade materials",
                    "Keeps drinks hot for hours", "Space-saving design for small kitchens",
                    "Soft, breathable and fade resistant"],
    },
    "Sports & Outdoors": {
        "brands": ["Trailix", "Peakform", "Aquaro", "Velocita", "Summito", "Ironfit", "Wildtrek"],
        "adjectives": ["Waterproof", "Lightweight", "Adjustable", "Foldable", "Ultralight", "Non-Slip"],
        "features": ["for Camping and Hiking", "for Home Gym", "for Men and Women", "with Carry Bag",
                     "for Outdoor Adventures", "for Training"],
        "nouns": ["Gear", "Kit", "Set", "Equipment"],
        "palette": ["Black", "Green", "Olive", "Orange", "Blue", "Grey"],
        "attributes": {"Material": ["Ripstop nylon", "Aluminium alloy", "Carbon fibre", "Neoprene", "TPE foam"],
                       "Weight": ["#.# kg", "### g"], "Size": ["S", "M", "L", "One size"],
                       "Max load": ["##0 kg"], "Waterproof rating": ["IPX#", "#000 mm"],
                       "Dimensions": ["### x ## cm"], "Suitable for": ["Beginners", "Adults", "Kids"]},
        "bullets": ["Sweat-resistant and quick-drying", "Folds down for easy storage",
                    "Built for all weather conditions", "Ergonomic non-slip grip", "Tested to the limit"],
    },
    "Toys & Games": {
        "brands": ["Playzo", "Tinkertot", "Funvale", "Brickly", "Wonderkin", "Giggly"],
        "adjectives": ["Educational", "Colourful", "Interactive", "Kids", "Classic", "Creative"],
        "features": ["for Kids Ages 3+", "for Boys and Girls", "for Family Game Night", "- Birthday Gift",
                     "for Toddlers", "with 100 Pieces"],
        "nouns": ["Toy", "Playset", "Game", "Gift Set"],
        "palette": ["Red", "Yellow", "Blue", "Green", "Pink", "Orange", "Purple"],
        "attributes": {"Age range": ["3+ years", "#+ years", "8-1# years"], "Pieces": ["##", "#00"],
                       "Players": ["2-# players", "1+ players"], "Material": ["Non-toxic ABS", "Wood", "Plush"],
                       "Batteries": ["# AA batteries required", "Not required"],
                       "Dimensions": ["## x ## x ## cm"]},
        "bullets": ["Encourages creativity and imagination", "Safe, non-toxic materials",
                    "Hours of fun for the whole family", "Develops fine motor skills", "Great birthday present"],
    },
    "Beauty & Personal Care": {
        "brands": ["Glowra", "Velvique", "Purelle", "Amberly", "Luxeen", "Serenia"],
        "adjectives": ["Hydrating", "Vegan", "Long-Lasting", "Organic", "Fragrance-Free", "Gentle"],
        "features": ["for All Skin Types", "with Hyaluronic Acid", "with Vitamin C", "for Dry Skin",
                     "for Men", "Travel Size"],
        "nouns": ["Beauty Set", "Care Kit", "Essentials", "Gift Box"],
        "palette": ["Pink", "White", "Rose Gold", "Purple", "Gold", "Beige"],
        "attributes": {"Skin type": ["All", "Dry", "Oily", "Sensitive"], "Volume": ["## ml", "#.# fl oz"],
                       "Scent": ["Unscented", "Lavender", "Vanilla", "Citrus"],
                       "Key ingredient": ["Hyaluronic acid", "Vitamin C", "Argan oil", "Retinol", "Aloe vera"],
                       "Power": ["1#00 W"], "Shade": ["Nude", "Ruby", "Ivory", "Cocoa"]},
        "bullets": ["Dermatologically tested", "Cruelty free and vegan", "Absorbs quickly without residue",
                    "Paraben and sulfate free", "Salon results at home"],
    },
    "Automotive": {
        "brands": ["Motorix", "Drivex", "Autovia", "Roadcraft", "Torqmax", "Gearline"],
        "adjectives": ["Universal Fit", "Heavy Duty", "OEM Replacement", "Waterproof", "High Performance"],
        "features": ["for Cars, SUVs and Trucks", "for 12V Vehicles", "Direct Fit", "with Installation Kit",
                     "All Weather"],
        "nouns": ["Auto Kit", "Car Set", "Vehicle Kit", "Replacement"],
        "palette": ["Black", "Grey", "Silver", "Red", "Blue"],
        "attributes": {"Vehicle fit": ["Universal", "Most sedans", "SUVs and trucks"],
                       "Compatible with": ["Toyota Camry 20##", "Ford F-150", "Honda Civic 20##", "most 12V vehicles"],
                       "Voltage": ["12 V", "24 V"], "Material": ["Rubber", "Steel", "Leather", "Polyester"],
                       "OE number": ["##-####"], "Position": ["Front", "Rear", "Front and rear"]},
        "bullets": ["Easy installation, no drilling", "Meets or exceeds OEM specifications",
                    "Resistant to oil and road salt", "Tested for durability under extreme conditions"],
    },
    "Office Products": {
        "brands": ["Scriptum", "Deskwell", "Paperio", "Officio", "Inkwise", "Notara"],
        "adjectives": ["Refillable", "Ergonomic", "Quick-Dry", "Assorted", "Heavy Duty", "Recycled"],
        "features": ["for Office and School", "Assorted Colours", "for Home Office", "with Storage",
                     "Bulk Pack"],
        "nouns": ["Office Set", "Supplies", "Desk Kit", "Value Pack"],
        "palette": ["Black", "Blue", "White", "Grey", "Yellow", "Red"],
        "attributes": {"Sheet count": ["#00 sheets", "## sheets"], "Paper size": ["A4", "Letter", "A5"],
                       "Ink colour": ["Black", "Blue", "Assorted"], "Tip size": ["0.# mm"],
                       "Material": ["Recycled paper", "Mesh", "Steel", "Plastic"],
                       "Print speed": ["## ppm"], "Dimensions": ["## x ## cm"]},
        "bullets": ["Smooth writing experience", "Acid-free paper", "Ideal for office, school and home",
                    "Adjustable height and lumbar support", "Smudge-proof, quick drying ink"],
    },
    "Clothing, Shoes & Jewelry": {
        "brands": ["Modaly", "Threadwell", "Urbana", "Stridon", "Velora", "Corvina", "Lunette"],
        "adjectives": ["Slim Fit", "Casual", "Breathable", "Classic", "Stretch", "Vintage", "Oversized"],
        "features": ["for Women", "for Men", "Regular Fit", "with Pockets", "Long Sleeve", "Short Sleeve"],
        "nouns": ["Collection", "Outfit", "Style", "Essentials"],
        "palette": ["Black", "Navy", "White", "Beige", "Red", "Brown", "Pink", "Gold"],
        "attributes": {"Size": ["XS", "S", "M", "L", "XL", "XXL"], "Fabric": ["100% cotton", "Polyester",
                                                                           "Linen blend", "Wool", "Leather"],
                       "Fit": ["Regular", "Slim", "Relaxed"], "Care": ["Machine wash cold", "Hand wash"],
                       "Closure": ["Zipper", "Lace-up", "Pull-on", "Button"], "Metal": ["925 sterling silver",
                                                                                     "14K gold plated"]},
        "bullets": ["Soft and comfortable for all-day wear", "True to size", "Cushioned insole",
                    "Hypoallergenic and nickel free", "Pre-shrunk fabric"],
    },
    "Tools & Home Improvement": {
        "brands": ["Forgeon", "Toolex", "Brightwatt", "Hammerly", "Voltmaster", "Buildrite"],
        "adjectives": ["Cordless", "Brushless", "Heavy Duty", "Dimmable", "Professional", "Magnetic"],
        "features": ["with 2 Batteries", "with Carrying Case", "for DIY and Professionals", "UL Listed",
                     "Energy Saving"],
        "nouns": ["Tool Kit", "Set", "Pro Kit", "Combo"],
        "palette": ["Yellow", "Orange", "Black", "Red", "Grey", "Silver"],
        "attributes": {"Voltage": ["18 V", "20 V Max", "12 V", "120 V"], "Power": ["##0 W", "# W LED"],
                       "Material": ["Chrome vanadium steel", "Brass", "Aluminium", "Fibreglass"],
                       "Brightness": ["#00 lumens"], "Speed": ["#,#00 RPM"], "Battery": ["#.0 Ah Li-ion"],
                       "Finish": ["Brushed nickel", "Matte black", "Chrome"]},
        "bullets": ["Ergonomic anti-slip handle", "Tool-free blade change", "Energy saving LED technology",
                    "Rust and corrosion resistant", "Includes mounting hardware"],
    },
    "Grocery & Gourmet Food": {
        "brands": ["Harvestly", "Nutrino", "Gourmetta", "Sunfield", "Crunchy Co.", "Bellaroma"],
        "adjectives": ["Organic", "Gluten-Free", "Non-GMO", "Keto", "Roasted", "Natural", "Family Size"],
        "features": ["Pack of 12", "Family Size", "No Added Sugar", "Fair Trade", "Resealable Bag"],
        "nouns": ["Variety Pack", "Snack Box", "Pantry Pack", "Gift Basket"],
        "palette": ["Brown", "Red", "Green", "Yellow", "Orange", "Gold"],
        "attributes": {"Weight": ["### g", "#.# kg", "## oz"], "Flavour": ["Original", "Sea Salt", "Vanilla",
                                                                        "Spicy", "Chocolate"],
                       "Diet type": ["Vegan", "Gluten free", "Keto", "Kosher"],
                       "Ingredients": ["Whole grain oats", "Arabica beans", "Durum wheat", "Cane sugar"],
                       "Servings": ["## servings"], "Best before": ["## months from production"]},
        "bullets": ["No artificial colours or preservatives", "Sustainably sourced",
                    "Rich, authentic taste", "Resealable pack keeps it fresh", "High in protein"],
    },
}
SHARED_BRANDS = ["Everyday Basics", "Nordvik", "Primeline", "Amazen", "Homepro"]


def singular(name: str) -> str:
    """Crude singular of a category name's last word ("Espresso Machines" -> "Espresso Machine").

    Args:
        name: a category name.

    Returns:
        The name with its last word singularised (unchanged when that would be wrong or unknown).
    """
    head, _, last = name.rpartition(" ")
    irregular = {"Lenses": "Lens", "Knives": "Knife", "Ties": "Tie", "Cookies": "Cookie", "Scarves": "Scarf"}
    if last in irregular:
        return f"{head} {irregular[last]}" if head else irregular[last]
    keep = {"Jeans", "Pants", "Shorts", "Sunglasses", "Leggings", "Oats", "Glasses", "Scissors", "Pliers",
            "Chips", "Crisps", "Mixed", "Sleepwear", "Activewear", "Dough", "Glass", "Gloss", "Dress"}
    if last in keep or len(last) < 4 or not last.endswith("s") or last.endswith("ss") or "&" in name:
        return name
    if last.endswith("ies"):
        last = last[:-3] + "y"
    elif last.endswith(("ches", "shes", "xes", "sses")):
        last = last[:-2]
    else:
        last = last[:-1]
    return f"{head} {last}" if head else last
